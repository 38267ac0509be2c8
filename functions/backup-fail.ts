// Workflow step "backup-fail" (see docs/service-contract.md).
import { FailureInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { backupFail } from '../lib/workflows/steps/volume-backup.ts';

export const handler = taskHandler('backup-fail', FailureInput, backupFail);

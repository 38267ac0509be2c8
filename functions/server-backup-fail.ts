// Workflow step "server-backup-fail" (see docs/service-contract.md).
import { FailureInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { serverBackupFail } from '../lib/workflows/steps/server-backup.ts';

export const handler = taskHandler('server-backup-fail', FailureInput, serverBackupFail);

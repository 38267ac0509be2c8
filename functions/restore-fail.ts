// Workflow step "restore-fail" (see docs/service-contract.md).
import { FailureInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { restoreFail } from '../lib/workflows/steps/volume-restore.ts';

export const handler = taskHandler('restore-fail', FailureInput, restoreFail);

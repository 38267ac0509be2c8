// Workflow step "server-restore-fail" (see docs/service-contract.md).
import { FailureInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { serverRestoreFail } from '../lib/workflows/steps/server-restore.ts';

export const handler = taskHandler('server-restore-fail', FailureInput, serverRestoreFail);

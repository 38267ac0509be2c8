// Workflow step "delete-fail" (see docs/service-contract.md).
import { FailureInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { deleteFail } from '../lib/workflows/steps/backup-delete.ts';

export const handler = taskHandler('delete-fail', FailureInput, deleteFail);

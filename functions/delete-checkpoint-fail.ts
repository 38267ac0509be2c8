// Workflow step "delete-checkpoint-fail" (see docs/service-contract.md).
import { FailureInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { deleteCheckpointFail } from '../lib/workflows/steps/checkpoint-delete.ts';

export const handler = taskHandler('delete-checkpoint-fail', FailureInput, deleteCheckpointFail);

// Workflow step "delete-checkpoint" (see docs/service-contract.md).
import { CheckpointDeleteInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { deleteCheckpointStep } from '../lib/workflows/steps/checkpoint-delete.ts';

export const handler = taskHandler('delete-checkpoint', CheckpointDeleteInput, deleteCheckpointStep);

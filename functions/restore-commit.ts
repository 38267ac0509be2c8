// Workflow step "restore-commit" (see docs/service-contract.md).
import { VolumeRestoreInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { restoreCommit } from '../lib/workflows/steps/volume-restore.ts';

export const handler = taskHandler('restore-commit', VolumeRestoreInput, restoreCommit);

// Workflow step "restore-prepare" (see docs/service-contract.md).
import { VolumeRestoreInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { restorePrepare } from '../lib/workflows/steps/volume-restore.ts';

export const handler = taskHandler('restore-prepare', VolumeRestoreInput, restorePrepare);

// Workflow step "backup-prepare" (see docs/service-contract.md).
import { VolumeBackupInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { backupPrepare } from '../lib/workflows/steps/volume-backup.ts';

export const handler = taskHandler('backup-prepare', VolumeBackupInput, backupPrepare);

// Workflow step "backup-commit" (see docs/service-contract.md).
import { VolumeBackupInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { backupCommit } from '../lib/workflows/steps/volume-backup.ts';

export const handler = taskHandler('backup-commit', VolumeBackupInput, backupCommit);

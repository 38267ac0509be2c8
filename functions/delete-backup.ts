// Workflow step "delete-backup" (see docs/service-contract.md).
import { BackupDeleteInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { deleteBackupStep } from '../lib/workflows/steps/backup-delete.ts';

export const handler = taskHandler('delete-backup', BackupDeleteInput, deleteBackupStep);

// Workflow step "server-backup-commit" (see docs/service-contract.md).
import { ServerBackupInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { serverBackupCommit } from '../lib/workflows/steps/server-backup.ts';

export const handler = taskHandler('server-backup-commit', ServerBackupInput, serverBackupCommit);

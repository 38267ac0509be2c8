// Workflow step "server-backup-prepare" (see docs/service-contract.md).
import { ServerBackupInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { serverBackupPrepare } from '../lib/workflows/steps/server-backup.ts';

export const handler = taskHandler('server-backup-prepare', ServerBackupInput, serverBackupPrepare);

// Workflow step "server-restore-commit" (see docs/service-contract.md).
import { ServerRestoreInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { serverRestoreCommit } from '../lib/workflows/steps/server-restore.ts';

export const handler = taskHandler('server-restore-commit', ServerRestoreInput, serverRestoreCommit);

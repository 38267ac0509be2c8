// Workflow step "server-restore-prepare" (see docs/service-contract.md).
import { ServerRestoreInput } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { serverRestorePrepare } from '../lib/workflows/steps/server-restore.ts';

export const handler = taskHandler('server-restore-prepare', ServerRestoreInput, serverRestorePrepare);

// Workflow step "backup-segment" (see docs/service-contract.md).
import { SegmentTask } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { backupSegmentTask } from '../lib/workflows/tasks.ts';

export const handler = taskHandler('backup-segment', SegmentTask, backupSegmentTask);

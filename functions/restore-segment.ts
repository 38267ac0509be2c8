// Workflow step "restore-segment" (see docs/service-contract.md).
import { SegmentTask } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { restoreSegmentTask } from '../lib/workflows/tasks.ts';

export const handler = taskHandler('restore-segment', SegmentTask, restoreSegmentTask);

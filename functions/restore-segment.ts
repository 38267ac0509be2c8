// Workflow step "restore-segment" (see docs/service-contract.md).
import { SegmentTask } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { restoreSegmentStep } from '../lib/workflows/steps/volume-restore.ts';

export const handler = taskHandler('restore-segment', SegmentTask, restoreSegmentStep);

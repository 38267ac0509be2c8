// Workflow step "backup-segment" (see docs/service-contract.md).
import { SegmentTask } from '../lib/workflows/contracts.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { backupSegmentStep } from '../lib/workflows/steps/volume-backup.ts';

export const handler = taskHandler('backup-segment', SegmentTask, backupSegmentStep);

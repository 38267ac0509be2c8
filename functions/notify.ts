// Workflow step "notify": publishes the job's outcome to the SNS topic.
import { z } from 'zod';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { notifyStep } from '../lib/workflows/steps/notify.ts';

const NotifyInput = z.object({
  projectId: z.string().min(1),
  jobId: z.string().min(1),
  event: z.enum(['backup', 'restore', 'delete']),
  status: z.enum(['success', 'failure']),
});

export const handler = taskHandler('notify', NotifyInput, notifyStep);

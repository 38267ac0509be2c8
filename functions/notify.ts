// Workflow step "notify": publishes the job's outcome to the SNS topic.
import { z } from 'zod';
import { NOTIFY_EVENTS, NOTIFY_STATUSES } from '../lib/notify/notifier.ts';
import { taskHandler } from '../lib/workflows/lambda.ts';
import { notifyStep } from '../lib/workflows/steps/notify.ts';

const NotifyInput = z.object({
  projectId: z.string().min(1),
  jobId: z.string().min(1),
  event: z.enum(NOTIFY_EVENTS),
  status: z.enum(NOTIFY_STATUSES),
});

export const handler = taskHandler('notify', NotifyInput, notifyStep);

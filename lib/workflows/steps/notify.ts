// The notify step every workflow ends with: the job's outcome, published through the notifier.
import type { NotifyEvent, NotifyStatus } from '../../notify/notifier.ts';
import type { TaskDeps } from './deps.ts';

const WHAT: Record<NotifyEvent, string> = { backup: 'Backup', restore: 'Restore', delete: 'Backup deletion' };

export async function notifyStep(deps: TaskDeps, input: { projectId: string; jobId: string; event: NotifyEvent; status: NotifyStatus }) {
  if (!deps.notifier) return { published: false };
  const job = await deps.jobs.get(input.projectId, input.jobId);
  const target = job?.entities.backup_id ? ` of backup ${job.entities.backup_id}` : '';
  await deps.notifier.publish({
    projectId: input.projectId,
    event: input.event,
    status: input.status,
    subject: `OpenVBS: ${WHAT[input.event]}${target} ${input.status === 'success' ? 'succeeded' : 'failed'}`,
    details: {
      job_id: input.jobId,
      job_type: job?.jobType,
      job_status: job?.status,
      entities: job?.entities ?? {},
      fail_reason: job?.failReason ?? null,
      begin_time: job?.beginTime ?? null,
      end_time: job?.endTime ?? null,
    },
  });
  return { published: true };
}

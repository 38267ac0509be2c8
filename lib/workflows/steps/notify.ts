// The notify step every workflow ends with: the job's outcome (its resources by id and name, result,
// duration, size and reason), formatted by lib/notify/message.ts and published through the notifier.
// Only single-item reads: the notify function may do GetItem and nothing else on the catalog.
import type { JobRecord } from '../../catalog/jobs.ts';
import { formatNotification } from '../../notify/message.ts';
import type { JobOutcome, OutcomeResource } from '../../notify/message.ts';
import type { NotifyEvent, NotifyStatus } from '../../notify/notifier.ts';
import type { TaskDeps } from './deps.ts';

export interface NotifyInput {
  projectId: string;
  jobId: string;
  event: NotifyEvent;
  status: NotifyStatus;
}

/** What the catalog says about the job's resources; anything missing (a deleted backup) is left out. */
export async function jobOutcome(deps: TaskDeps, input: NotifyInput, job: JobRecord | undefined): Promise<JobOutcome> {
  const { projectId } = input;
  const entities = job?.entities ?? {};
  const resources: OutcomeResource[] = [];
  let sizeBytes: number | undefined;
  let storedBytes: number | undefined;

  if (entities.checkpoint_id) {
    const checkpoint = await deps.checkpoints.get(projectId, entities.checkpoint_id);
    const serverId = entities.server_id ?? checkpoint?.serverId;
    if (serverId) resources.push({ kind: 'server', id: serverId, ...(checkpoint?.serverName ? { name: checkpoint.serverName } : {}) });
    resources.push({ kind: 'checkpoint', label: 'Server backup', id: entities.checkpoint_id, ...(checkpoint?.name ? { name: checkpoint.name } : {}) });
    if (checkpoint) {
      sizeBytes = checkpoint.disks.reduce((sum, d) => sum + d.sizeBytes, 0);
      if (input.event === 'backup') {
        const disks = await Promise.all(checkpoint.disks.map((d) => deps.backups.getBackup(projectId, d.backupId)));
        if (disks.every((b) => b?.stats)) storedBytes = disks.reduce((sum, b) => sum + b!.stats!.storedBytes, 0);
      }
    }
  } else {
    const backup = entities.backup_id ? await deps.backups.getBackup(projectId, entities.backup_id) : undefined;
    const volumeId = entities.volume_id;
    const volume = volumeId ? await deps.volumes.get(projectId, volumeId) : undefined;
    if (input.event === 'restore') {
      if (entities.backup_id) resources.push({ kind: 'backup', id: entities.backup_id, ...(backup?.name ? { name: backup.name } : {}) });
      if (volumeId) resources.push({ kind: 'volume', label: 'Target volume', id: volumeId, ...(volume?.name ? { name: volume.name } : {}) });
    } else {
      if (volumeId) resources.push({ kind: 'volume', id: volumeId, ...(volume?.name ? { name: volume.name } : {}) });
      if (entities.backup_id) resources.push({ kind: 'backup', id: entities.backup_id, ...(backup?.name ? { name: backup.name } : {}) });
    }
    sizeBytes = backup?.sizeBytes ?? (job?.bytesTotal || undefined);
    if (input.event === 'backup' && backup?.stats) storedBytes = backup.stats.storedBytes;
  }

  const beginTime = job?.beginTime ?? job?.createdAt;
  return {
    projectId,
    event: input.event,
    status: input.status,
    jobId: input.jobId,
    ...(job ? { jobType: job.jobType, jobStatus: job.status, entities } : {}),
    resources,
    ...(beginTime ? { beginTime } : {}),
    ...(job?.endTime ? { endTime: job.endTime } : {}),
    ...(sizeBytes !== undefined ? { sizeBytes } : {}),
    ...(storedBytes !== undefined ? { storedBytes } : {}),
    ...(job?.failReason ? { reason: job.failReason } : {}),
    ...(job?.errorCode ? { errorCode: job.errorCode } : {}),
  };
}

export async function notifyStep(deps: TaskDeps, input: NotifyInput) {
  if (!deps.notifier) return { published: false };
  const job = await deps.jobs.get(input.projectId, input.jobId);
  await deps.notifier.publish(formatNotification(await jobOutcome(deps, input, job)));
  return { published: true };
}

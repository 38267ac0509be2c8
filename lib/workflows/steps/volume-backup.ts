// The volume-backup workflow's steps: prepare → segments → commit, and its failure path.
import { backupSegment, commitBackup, failBackup, prepareBackup } from '../../engine/backup.ts';
import { backupTotals } from '../../engine/backup-totals.ts';
import type { FailureInput, SegmentTask, VolumeBackupInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';
import { WorkflowStateError, failJob, now, progressReporter, requireJob, requireLock, segmentList, startJob } from './job.ts';

export async function backupPrepare(deps: TaskDeps, input: VolumeBackupInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await requireLock(deps, input.projectId, input.volumeId, input.jobId);
  let backup = await deps.backups.getBackup(input.projectId, input.backupId);
  if (!backup) {
    backup = await prepareBackup(deps.engine, {
      projectId: input.projectId,
      volumeId: input.volumeId,
      backupId: input.backupId,
      name: input.name,
      description: input.description,
      forceFull: input.forceFull,
      extra: { jobId: input.jobId, tags: input.tags ?? [], ST: 0 },
    });
  } else if (backup.status !== 'creating') {
    throw new WorkflowStateError(`backup ${input.backupId} is ${backup.status}`);
  }
  await startJob(deps, job, backup.sizeBytes);
  return segmentList(backup.segmentCount);
}

export async function backupSegmentStep(deps: TaskDeps, task: SegmentTask) {
  const progress = progressReporter(deps, task.projectId, task.jobId, deps.engine.config.blockSize);
  try {
    const stats = await backupSegment(deps.engine, task.projectId, task.backupId, task.segment, progress.onBlocks);
    return { segment: task.segment, newChunks: stats.newChunks, storedBytes: stats.storedBytes };
  } finally {
    await progress.done();
  }
}

/** The checkpoint a disk backup belongs to, when a server backup made it. */
export const checkpointOf = (extra: Record<string, unknown> | undefined) => (typeof extra?.checkpointId === 'string' ? extra.checkpointId : undefined);

export async function backupCommit(deps: TaskDeps, input: VolumeBackupInput) {
  const pending = await deps.backups.getBackup(input.projectId, input.backupId);
  const backup = pending && checkpointOf(pending.extra) ? await finishDiskBackup(deps, input.projectId, input.backupId) : await commitBackup(deps.engine, input.projectId, input.backupId);
  await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  // The job ends last: a client that sees it finished sees the backup and the volume settled too.
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now(), bytesDone: backup.sizeBytes });
  return { backupId: backup.backupId, status: backup.status };
}

/**
 * A server backup's disk: its totals are recorded, but it stays `creating` until the whole server backup
 * commits (server-backup-commit makes the checkpoint and all its disks available in one transaction).
 */
async function finishDiskBackup(deps: TaskDeps, projectId: string, backupId: string) {
  const rec = await deps.backups.getBackup(projectId, backupId);
  if (!rec) throw new WorkflowStateError(`backup ${backupId} not found`);
  if (rec.status !== 'creating') throw new WorkflowStateError(`backup ${backupId} is ${rec.status}, not creating`);
  const stats = await backupTotals(deps.engine, rec);
  const now = new Date().toISOString();
  return deps.backups.updateBackup(projectId, backupId, { stats, completedAt: now, updatedAt: now }, ['creating']);
}

export async function backupFail(deps: TaskDeps, input: FailureInput) {
  return failJob(deps, input, async (reason) => {
    await failBackup(deps.engine, input.projectId, input.backupId, reason);
    if (input.volumeId) await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  });
}

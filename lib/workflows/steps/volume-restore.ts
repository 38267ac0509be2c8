// The volume-restore workflow's steps: prepare → segments → commit, and its failure path.
import { BACKUP_PROJECT_ENTITY } from '../../catalog/shares.ts';
import { restoreBackupSegment } from '../../engine/restore.ts';
import type { FailureInput, SegmentTask, VolumeRestoreInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';
import { WorkflowStateError, failJob, now, progressReporter, requireJob, requireLock, segmentList, startJob } from './job.ts';

/**
 * The project whose catalog holds the backup a restore job reads: the job's own, or (restoring a backup another
 * project shared with it) the owner's, as the service wrote it into the job's entities. The workflow's payloads
 * (and the segment Map's items) stay the same for every restore; each step asks the job. The target volume is
 * always the job's project's; the backup's status, record and key domain are always the owner's.
 */
async function backupProject(deps: TaskDeps, projectId: string, jobId: string): Promise<string> {
  const job = await deps.jobs.get(projectId, jobId);
  return job?.entities[BACKUP_PROJECT_ENTITY] ?? projectId;
}

export async function restorePrepare(deps: TaskDeps, input: VolumeRestoreInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await requireLock(deps, input.projectId, input.volumeId, input.jobId);
  const backup = await deps.backups.getBackup(job.entities[BACKUP_PROJECT_ENTITY] ?? input.projectId, input.backupId);
  if (!backup || backup.status !== 'restoring') throw new WorkflowStateError(`backup ${input.backupId} is not being restored`);
  await startJob(deps, job, backup.sizeBytes);
  return segmentList(backup.segmentCount);
}

export async function restoreSegmentStep(deps: TaskDeps, task: SegmentTask) {
  const progress = progressReporter(deps, task.projectId, task.jobId, deps.engine.config.blockSize);
  try {
    const written = await restoreBackupSegment(
      deps.engine,
      { projectId: task.projectId, backupProjectId: await backupProject(deps, task.projectId, task.jobId), backupId: task.backupId, targetVolumeId: task.volumeId, segment: task.segment },
      progress.onBlocks,
    );
    return { segment: task.segment, bytesWritten: written };
  } finally {
    await progress.done();
  }
}

/** The backup goes back to `available` once no restore reads it. */
async function endRestore(deps: TaskDeps, projectId: string, backupId: string) {
  const backup = await deps.backups.getBackup(projectId, backupId);
  if (backup?.status === 'restoring') await deps.backups.updateBackup(projectId, backupId, { status: 'available' }, ['restoring']);
  return backup;
}

export async function restoreCommit(deps: TaskDeps, input: VolumeRestoreInput) {
  const backup = await endRestore(deps, await backupProject(deps, input.projectId, input.jobId), input.backupId);
  await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now(), bytesDone: backup?.sizeBytes ?? 0 });
  return { restored: true };
}

export async function restoreFail(deps: TaskDeps, input: FailureInput) {
  return failJob(deps, input, async (reason) => {
    // The backup itself is untouched by a failed restore; the target holds partial data, so it is `error`.
    await endRestore(deps, await backupProject(deps, input.projectId, input.jobId), input.backupId);
    if (input.volumeId) await deps.volumes.release(input.projectId, input.volumeId, input.jobId, 'error', `restore of backup ${input.backupId} did not finish: ${reason}`);
  });
}

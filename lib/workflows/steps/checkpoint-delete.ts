// The checkpoint-delete workflow's step and its failure path: a server backup goes with all its disk backups.
import type { CheckpointDeleteInput, FailureInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';
import { WorkflowStateError, failJob, now, requireJob } from './job.ts';
import { releaseBackupSnapshot } from './volume-backup.ts';

/** Each `deleting` disk backup leaves the catalog for the GC queue (as a VBS delete does), then the checkpoint. */
export async function deleteCheckpointStep(deps: TaskDeps, input: CheckpointDeleteInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'RUNNING', beginTime: job.beginTime ?? now() });
  const checkpoint = await deps.checkpoints.get(input.projectId, input.backupId);
  if (checkpoint) {
    if (checkpoint.status !== 'deleting') throw new WorkflowStateError(`server backup ${input.backupId} is ${checkpoint.status}, not deleting`);
    for (const disk of checkpoint.disks) {
      const backup = await deps.backups.getBackup(input.projectId, disk.backupId);
      if (!backup) continue;
      if (backup.status !== 'deleting') throw new WorkflowStateError(`backup ${disk.backupId} is ${backup.status}, not deleting`);
      if (!(await deps.gcQueue.removeBackupAndQueue(backup))) throw new WorkflowStateError(`backup ${disk.backupId} changed while being deleted`);
      // On EBS the disk's snapshot may be its kept base: it goes with the backup (the next backup reads everything).
      await releaseBackupSnapshot(deps, backup);
    }
    await deps.checkpoints.delete(input.projectId, input.backupId);
  }
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now() });
  return { deleted: true };
}

/**
 * A delete that failed puts the server backup back as it was: `available` when it had been committed, `error`
 * otherwise, with the disk backups it still has; the ones already queued for GC are gone (the checkpoint then
 * stays `error` and can be deleted again).
 */
export async function deleteCheckpointFail(deps: TaskDeps, input: FailureInput) {
  return failJob(deps, input, async () => {
    const checkpoint = await deps.checkpoints.get(input.projectId, input.backupId);
    if (checkpoint?.status !== 'deleting') return;
    const remaining = await Promise.all(checkpoint.disks.map((d) => deps.backups.getBackup(input.projectId, d.backupId)));
    const whole = remaining.every((b) => b !== undefined);
    const status = whole && checkpoint.finishedAt && !checkpoint.failReason ? 'available' : 'error';
    for (const backup of remaining) {
      if (backup?.status === 'deleting') await deps.backups.updateBackup(input.projectId, backup.backupId, { status }, ['deleting']);
    }
    await deps.checkpoints.update(input.projectId, input.backupId, { status, ...(whole ? {} : { failReason: 'a delete removed some of its disk backups' }) }, ['deleting']);
  });
}

// The backup-delete workflow's step and its failure path.
import type { BackupDeleteInput, FailureInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';
import { WorkflowStateError, failJob, now, requireJob } from './job.ts';
import { releaseBackupSnapshot } from './volume-backup.ts';

/** Removes the `deleting` backup from the catalog and queues it for GC, in one atomic write. */
export async function deleteBackupStep(deps: TaskDeps, input: BackupDeleteInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'RUNNING', beginTime: job.beginTime ?? now() });
  const backup = await deps.backups.getBackup(input.projectId, input.backupId);
  if (backup) {
    if (backup.status !== 'deleting') throw new WorkflowStateError(`backup ${input.backupId} is ${backup.status}, not deleting`);
    const removed = await deps.gcQueue.removeBackupAndQueue(backup);
    if (!removed) throw new WorkflowStateError(`backup ${input.backupId} changed while being deleted`);
    // On EBS the backup's snapshot may be the volume's kept base: it goes with the backup (the next backup reads everything).
    await releaseBackupSnapshot(deps, backup);
  }
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now() });
  return { deleted: true };
}

/**
 * A delete that failed leaves the backup as it was before: `available` when it had been committed (it is as
 * restorable as before), `error` otherwise (deletes start only from those two). The job carries the reason.
 */
export async function deleteFail(deps: TaskDeps, input: FailureInput) {
  return failJob(deps, input, async () => {
    const backup = await deps.backups.getBackup(input.projectId, input.backupId);
    if (backup?.status === 'deleting') await deps.backups.updateBackup(input.projectId, input.backupId, { status: backup.completedAt ? 'available' : 'error' }, ['deleting']);
  });
}

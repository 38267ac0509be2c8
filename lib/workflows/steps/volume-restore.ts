// The volume-restore workflow's steps: prepare → segments → commit, and its failure path.
//
// On a provider with a one-snapshot restore (EBS: VolumeProvider.startRestore), the whole restore writes one new
// snapshot: prepare starts it and records it on the target's volume record (`restore`), each segment task writes
// its blocks into it (a writer that does not finish it) and records how many it stored, and commit finishes it
// with their sum: the snapshot becomes a volume that takes the target's place on its (stopped) server, or stands
// beside a detached target. The new volume's id is recorded as the target's `restoredTo`, in the job's entities
// (`restored_volume_id`), and the new volume is adopted into the catalog. The target itself is not written before
// commit, so a restore that fails before then leaves it as it was and deletes the unfinished snapshot.
import { BACKUP_PROJECT_ENTITY } from '../../catalog/shares.ts';
import type { RestoreState } from '../../catalog/volumes.ts';
import type { BlockWriter } from '../../engine/ports.ts';
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

/** The job entity naming the volume an EBS restore made (see the top of this file). */
export const RESTORED_VOLUME_ENTITY = 'restored_volume_id';

/** The provider's one-snapshot restore, when it has one (EBS); undefined: each segment task opens the target itself. */
function oneSnapshotRestore(deps: TaskDeps) {
  const p = deps.provider;
  if (!p.startRestore || !p.snapshotWriter || !p.finishRestore) return undefined;
  return { start: p.startRestore.bind(p), writer: p.snapshotWriter.bind(p), finish: p.finishRestore.bind(p) };
}

/** The restore state this job recorded on the target, if any. */
async function restoreStateOf(deps: TaskDeps, projectId: string, volumeId: string, jobId: string): Promise<RestoreState | undefined> {
  const volume = await deps.volumes.get(projectId, volumeId);
  return volume?.restore?.jobId === jobId ? volume.restore : undefined;
}

export async function restorePrepare(deps: TaskDeps, input: VolumeRestoreInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  const volume = await requireLock(deps, input.projectId, input.volumeId, input.jobId);
  const backup = await deps.backups.getBackup(job.entities[BACKUP_PROJECT_ENTITY] ?? input.projectId, input.backupId);
  if (!backup || backup.status !== 'restoring') throw new WorkflowStateError(`backup ${input.backupId} is not being restored`);
  const split = oneSnapshotRestore(deps);
  // A retried prepare keeps the snapshot it started.
  if (split && volume.restore?.jobId !== input.jobId) {
    const { snapshotId, sizeBytes } = await split.start(input.projectId, input.volumeId);
    const abandon = () => deps.provider.releaseSnapshots(input.projectId, [snapshotId]).catch(() => {});
    if (sizeBytes < backup.sizeBytes) {
      await abandon();
      throw new WorkflowStateError(`volume ${input.volumeId} (${sizeBytes} bytes) is smaller than the ${backup.sizeBytes} bytes of backup ${input.backupId}`);
    }
    if (!(await deps.volumes.setRestore(input.projectId, input.volumeId, input.jobId, { jobId: input.jobId, snapshotId, sizeBytes }))) {
      await abandon();
      throw new WorkflowStateError(`volume ${input.volumeId} is not held by job ${input.jobId}`);
    }
  }
  await startJob(deps, job, backup.sizeBytes);
  return segmentList(backup.segmentCount);
}

export async function restoreSegmentStep(deps: TaskDeps, task: SegmentTask) {
  const split = oneSnapshotRestore(deps);
  const restore = split ? await restoreStateOf(deps, task.projectId, task.volumeId, task.jobId) : undefined;
  if (split && !restore) throw new WorkflowStateError(`the restore of volume ${task.volumeId} by job ${task.jobId} was not started`);
  // This task's writer into the restore's snapshot: its flush stores the segment's blocks, and nothing more.
  let writer: (BlockWriter & { readonly blocksStored: number }) | undefined;
  const openWriter = split && restore ? async () => (writer = split.writer(task.projectId, task.volumeId, restore.snapshotId, restore.sizeBytes, false)) : undefined;
  const progress = progressReporter(deps, task.projectId, task.jobId, deps.engine.config.blockSize);
  try {
    const written = await restoreBackupSegment(
      deps.engine,
      {
        projectId: task.projectId,
        backupProjectId: await backupProject(deps, task.projectId, task.jobId),
        backupId: task.backupId,
        targetVolumeId: task.volumeId,
        segment: task.segment,
        ...(openWriter ? { openWriter } : {}),
      },
      progress.onBlocks,
    );
    // Commit completes the snapshot with the number of blocks written to it: the sum of the segments' counts.
    if (writer) await deps.volumes.recordRestoreSegment(task.projectId, task.volumeId, task.jobId, task.segment, writer.blocksStored);
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

/** Finishes a one-snapshot restore (see the top of this file); returns the volume it made, or undefined when there is none. */
async function finishOneSnapshotRestore(deps: TaskDeps, input: VolumeRestoreInput): Promise<{ volumeId: string; swapped: boolean } | undefined> {
  const split = oneSnapshotRestore(deps);
  if (!split) return undefined;
  const volume = await deps.volumes.get(input.projectId, input.volumeId);
  const restore = volume?.restore?.jobId === input.jobId ? volume.restore : undefined;
  if (!restore) {
    // A retried commit after the restore finished: what it made is on the record.
    if (volume?.lockJobId === input.jobId && volume.restoredTo) return { volumeId: volume.restoredTo, swapped: false };
    throw new WorkflowStateError(`the restore of volume ${input.volumeId} by job ${input.jobId} was not started`);
  }
  // From here on the target may change (the swap): a failure now leaves it `error`.
  await deps.volumes.setRestore(input.projectId, input.volumeId, input.jobId, { ...restore, finishing: true });
  const blocks = await deps.volumes.restoreBlocks(input.projectId, input.volumeId, input.jobId);
  const made = await split.finish(input.projectId, input.volumeId, restore.snapshotId, blocks);
  await deps.volumes.setRestore(input.projectId, input.volumeId, input.jobId, undefined, made.volumeId);
  await deps.volumes.clearRestoreSegments(input.projectId, input.volumeId, input.jobId);
  await deps.volumes.adopt(input.projectId, await deps.provider.describe(input.projectId, made.volumeId));
  return { volumeId: made.volumeId, swapped: made.instanceId !== undefined };
}

export async function restoreCommit(deps: TaskDeps, input: VolumeRestoreInput) {
  const made = await finishOneSnapshotRestore(deps, input);
  const backup = await endRestore(deps, await backupProject(deps, input.projectId, input.jobId), input.backupId);
  await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  if (made) {
    // The target as the provider sees it now: detached, when the new volume took its place. A replaced disk that
    // was its server's without a project tag of its own is no longer the project's by the provider's rule (it
    // keeps its `openvbs:replaced-by` tag); its record says detached until its next use finds it gone.
    const target = await deps.provider.describe(input.projectId, input.volumeId).catch(() => undefined);
    const record = target ? undefined : await deps.volumes.get(input.projectId, input.volumeId);
    const info = target ?? (record && made.swapped ? { volumeId: record.volumeId, name: record.name, sizeBytes: record.sizeBytes, ...(record.kmsKeyId ? { kmsKeyId: record.kmsKeyId } : {}) } : undefined);
    if (info) await deps.volumes.adopt(input.projectId, info);
  }
  const job = await requireJob(deps, input.projectId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, {
    status: 'SUCCESS',
    endTime: now(),
    bytesDone: backup?.sizeBytes ?? 0,
    ...(made ? { entities: { ...job.entities, [RESTORED_VOLUME_ENTITY]: made.volumeId } } : {}),
  });
  return { restored: true, ...(made ? { volumeId: made.volumeId } : {}) };
}

/**
 * Lets go of a one-snapshot restore that will not finish: its snapshot is deleted and its state removed. True when
 * the target was never written (the restore had not started finishing). The server restore's failure path calls it
 * for each disk too (a disk whose task was stopped mid-way ran no failure step of its own).
 */
export async function abandonRestore(deps: TaskDeps, projectId: string, volumeId: string, jobId: string): Promise<boolean> {
  if (!oneSnapshotRestore(deps)) return false;
  const restore = await restoreStateOf(deps, projectId, volumeId, jobId);
  if (restore?.finishing) return false;
  if (restore) {
    await deps.provider.releaseSnapshots(projectId, [restore.snapshotId]);
    await deps.volumes.setRestore(projectId, volumeId, jobId, undefined);
    await deps.volumes.clearRestoreSegments(projectId, volumeId, jobId);
  }
  return true;
}

export async function restoreFail(deps: TaskDeps, input: FailureInput) {
  return failJob(deps, input, async (reason) => {
    await endRestore(deps, await backupProject(deps, input.projectId, input.jobId), input.backupId);
    if (!input.volumeId) return;
    // The backup itself is untouched by a failed restore; a target written in place holds partial data, so it is
    // `error`. A one-snapshot restore that had not started finishing never wrote the target: it is as it was.
    if (await abandonRestore(deps, input.projectId, input.volumeId, input.jobId)) await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
    else await deps.volumes.release(input.projectId, input.volumeId, input.jobId, 'error', `restore of backup ${input.backupId} did not finish: ${reason}`);
  });
}

// The volume-backup workflow's steps: prepare → segments → commit, and its failure path.
//
// Snapshots: a provider that cannot read a live volume (EBS) has `snapshotVolume`; the prepare step takes one
// snapshot of the volume, records it as the backup's `sourceSnapshotId`, and every segment reads it (the engine
// also reads only what changed since the parent's `sourceSnapshotId`). A provider that keeps snapshots keeps each
// volume's newest as the base of its next incremental: commit releases the older ones, a failed backup releases
// its own, and deleting a backup releases its snapshot (the next backup then reads every written block).
import { backupSegment, commitBackup, failBackup, prepareBackup } from '../../engine/backup.ts';
import { backupTotals } from '../../engine/backup-totals.ts';
import type { BackupRecord } from '../../engine/ports.ts';
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
  // A server backup's disk reads the group snapshot its prepare step recorded; a retried prepare reuses its snapshot.
  if (deps.provider.snapshotVolume && !backup.sourceSnapshotId && !checkpointOf(backup.extra)) {
    const snapshotId = await deps.provider.snapshotVolume(input.projectId, input.volumeId);
    try {
      backup = await deps.backups.updateBackup(input.projectId, input.backupId, { sourceSnapshotId: snapshotId }, ['creating']);
    } catch (err) {
      await deps.provider.releaseSnapshots(input.projectId, [snapshotId]).catch(() => {});
      throw err;
    }
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
  const disk = pending !== undefined && checkpointOf(pending.extra) !== undefined;
  const backup = disk ? await finishDiskBackup(deps, input.projectId, input.backupId) : await commitBackup(deps.engine, input.projectId, input.backupId);
  // (A server backup's disks let go of their snapshots when the whole server backup commits.)
  if (!disk) await releaseOlderSnapshots(deps, input.projectId, input.volumeId, backup.sourceSnapshotId);
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
    const rec = await deps.backups.getBackup(input.projectId, input.backupId);
    await failBackup(deps.engine, input.projectId, input.backupId, reason);
    // A backup that did not commit is no one's base: its own snapshot goes (a server backup's fail path releases its disks').
    if (rec && rec.status !== 'available' && !checkpointOf(rec.extra)) await releaseBackupSnapshot(deps, rec);
    if (input.volumeId) await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  });
}

/**
 * After a backup of `volumeId` reading snapshot `keep` committed, on a provider that keeps snapshots: `keep` is the
 * volume's base for its next incremental, and the snapshots earlier backups read are released (normally just the
 * previous base; all of them, so that one skipped by a full backup or a failure is not kept forever). Released
 * snapshots are no error to release again. Elsewhere a snapshot was only a copy, released by whoever took it.
 */
export async function releaseOlderSnapshots(deps: TaskDeps, projectId: string, volumeId: string, keep: string | undefined): Promise<void> {
  if (!deps.provider.keepsSnapshots) return;
  const older = (await deps.backups.listBackups(projectId, { volumeId })).flatMap((b) => (b.sourceSnapshotId && b.sourceSnapshotId !== keep && b.status !== 'creating' ? [b.sourceSnapshotId] : []));
  if (older.length) await deps.provider.releaseSnapshots(projectId, older);
}

/** Releases the snapshot a backup read, on a provider that keeps snapshots (a deleted or failed backup is no one's base). */
export async function releaseBackupSnapshot(deps: TaskDeps, backup: Pick<BackupRecord, 'projectId' | 'sourceSnapshotId'>): Promise<void> {
  if (deps.provider.keepsSnapshots && backup.sourceSnapshotId) await deps.provider.releaseSnapshots(backup.projectId, [backup.sourceSnapshotId]);
}

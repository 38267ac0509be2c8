// The server-backup workflow's steps: prepare (group snapshot, one `creating` backup per disk) → each disk
// through the volume-backup steps → commit (the checkpoint and every disk backup `available` at once), and its
// failure path. Every step is idempotent.
import type { CheckpointRecord } from '../../catalog/checkpoints.ts';
import { failBackup, prepareBackup, segmentBlocksFor } from '../../engine/backup.ts';
import type { EngineDeps } from '../../engine/engine.ts';
import type { DiskTask, FailureInput, ServerBackupInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';
import { WorkflowStateError, failJob, failureReason, now, requireJob, requireLock, startJob } from './job.ts';
import { releaseOlderSnapshots } from './volume-backup.ts';

export async function requireCheckpoint(deps: TaskDeps, projectId: string, checkpointId: string): Promise<CheckpointRecord> {
  const checkpoint = await deps.checkpoints.get(projectId, checkpointId);
  if (!checkpoint) throw new WorkflowStateError(`server backup ${checkpointId} not found`);
  return checkpoint;
}

/**
 * The engine cutting a disk of a server of `serverBytes` in all: every disk gets the segment size a volume of
 * the whole server's size would get, so the server's disks together have at most MAX_SEGMENTS segments plus
 * one per disk (the one execution stays within Step Functions' history limit) and no segment is larger than
 * the largest volume's (the segment task's time). A server of one disk is cut as that volume's own backups are.
 */
export function diskEngine(engine: EngineDeps, serverBytes: number): EngineDeps {
  const blocks = Math.ceil(serverBytes / engine.config.blockSize);
  return { ...engine, config: { ...engine.config, segmentBlocks: segmentBlocksFor(blocks, engine.config.segmentBlocks) } };
}

/** The disks Map's items: each disk's job, backup and volume. */
export function diskTasks(checkpoint: CheckpointRecord, names: (disk: CheckpointRecord['disks'][number]) => string): { disks: DiskTask[] } {
  return {
    disks: checkpoint.disks.map((disk) => ({ projectId: checkpoint.projectId, jobId: disk.jobId, backupId: disk.backupId, volumeId: disk.volumeId, name: names(disk) })),
  };
}

const diskBackupName = (checkpoint: CheckpointRecord, device: string) => `${checkpoint.name}_${device.split('/').pop()}`.slice(0, 255);

export async function serverBackupPrepare(deps: TaskDeps, input: ServerBackupInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  let checkpoint = await requireCheckpoint(deps, input.projectId, input.backupId);
  if (checkpoint.status !== 'protecting') throw new WorkflowStateError(`server backup ${checkpoint.checkpointId} is ${checkpoint.status}`);
  for (const disk of checkpoint.disks) await requireLock(deps, input.projectId, disk.volumeId, disk.jobId);
  if (!checkpoint.snapshot) {
    // Every disk at one instant; a retried step after this point reuses the snapshot it recorded.
    const group = await deps.provider.snapshotDisks(input.projectId, input.serverId, checkpoint.disks.map((d) => d.volumeId));
    const { disks: _disks, ...snapshot } = group;
    checkpoint = await deps.checkpoints.update(
      input.projectId,
      checkpoint.checkpointId,
      { snapshot, disks: checkpoint.disks.map((disk, i) => ({ ...disk, snapshotId: group.disks[i]!.snapshotId })) },
      ['protecting'],
    );
  }
  let incremental = false;
  const serverBytes = checkpoint.disks.reduce((sum, d) => sum + d.sizeBytes, 0);
  for (const disk of checkpoint.disks) {
    let backup = await deps.backups.getBackup(input.projectId, disk.backupId);
    if (!backup) {
      backup = await prepareBackup(diskEngine(deps.engine, serverBytes), {
        projectId: input.projectId,
        volumeId: disk.volumeId,
        backupId: disk.backupId,
        name: diskBackupName(checkpoint, disk.device),
        ...(checkpoint.description !== undefined ? { description: checkpoint.description } : {}),
        ...(checkpoint.forceFull ? { forceFull: true } : {}),
        extra: {
          jobId: disk.jobId,
          tags: checkpoint.tags,
          ST: 1,
          checkpointId: checkpoint.checkpointId,
          serverId: checkpoint.serverId,
          device: disk.device,
          bootable: disk.bootable,
          crashConsistent: checkpoint.snapshot?.crashConsistent ?? false,
        },
      });
    }
    if (disk.snapshotId && backup.sourceSnapshotId !== disk.snapshotId) {
      backup = await deps.backups.updateBackup(input.projectId, disk.backupId, { sourceSnapshotId: disk.snapshotId }, ['creating']);
    }
    if (backup.status !== 'creating') throw new WorkflowStateError(`backup ${disk.backupId} of disk ${disk.volumeId} is ${backup.status}`);
    incremental ||= backup.parentId !== undefined;
  }
  await deps.checkpoints.update(input.projectId, checkpoint.checkpointId, { incremental }, ['protecting']);
  await startJob(deps, job, serverBytes);
  return diskTasks(checkpoint, (disk) => diskBackupName(checkpoint, disk.device));
}

/**
 * Snapshots no backup needs any more. A provider that keeps snapshots (EBS) keeps each disk's newest one as the
 * base of its next incremental and lets go of the ones before (as a volume backup's commit does, whichever kind of
 * backup read them: see releaseOlderSnapshots); otherwise every snapshot was only a copy to read.
 */
async function releaseAfterCommit(deps: TaskDeps, checkpoint: CheckpointRecord) {
  if (deps.provider.keepsSnapshots) {
    for (const disk of checkpoint.disks) await releaseOlderSnapshots(deps, checkpoint.projectId, disk.volumeId, disk.snapshotId);
    return;
  }
  const release = checkpoint.disks.flatMap((d) => (d.snapshotId ? [d.snapshotId] : []));
  if (release.length) await deps.provider.releaseSnapshots(checkpoint.projectId, release);
}

export async function serverBackupCommit(deps: TaskDeps, input: ServerBackupInput) {
  const checkpoint = await requireCheckpoint(deps, input.projectId, input.backupId);
  if (checkpoint.status !== 'available') {
    for (const disk of checkpoint.disks) {
      const backup = await deps.backups.getBackup(input.projectId, disk.backupId);
      if (!backup?.completedAt) throw new WorkflowStateError(`disk ${disk.device} (${disk.volumeId}) of server backup ${checkpoint.checkpointId} has not finished`);
    }
    await deps.checkpoints.transition(input.projectId, checkpoint.checkpointId, {
      from: ['protecting'],
      to: 'available',
      backupFrom: ['creating'],
      backupTo: 'available',
      patch: { finishedAt: now() },
    });
  }
  await releaseAfterCommit(deps, checkpoint);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now() });
  return { checkpointId: checkpoint.checkpointId, status: 'available' };
}

/** What failed, naming the disk(s): the reasons of the server job's disk jobs that ended FAIL, else the execution's own. */
export async function serverFailureReason(deps: TaskDeps, checkpoint: CheckpointRecord, jobId: string, fallback: string): Promise<string> {
  const subJobs = await deps.jobs.listSubJobs(checkpoint.projectId, jobId);
  const failed = checkpoint.disks.flatMap((disk) => {
    const job = subJobs.find((j) => j.entities.backup_id === disk.backupId);
    return job?.status === 'FAIL' ? [`disk ${disk.device} (${disk.volumeId}): ${job.failReason ?? 'failed'}`] : [];
  });
  return failed.length ? failed.join('; ') : fallback;
}

/**
 * The failure path: the checkpoint `error` naming the disk that failed and why, every disk backup of it `error`
 * (none is ever available: they become available only together, in commit), every disk's job ended and volume
 * released, the snapshots let go. Earlier checkpoints are not touched.
 */
export async function serverBackupFail(deps: TaskDeps, input: FailureInput) {
  const checkpoint = await deps.checkpoints.get(input.projectId, input.backupId);
  const reason = checkpoint ? await serverFailureReason(deps, checkpoint, input.jobId, failureReason(input.error)) : failureReason(input.error);
  const failure: FailureInput = { ...input, error: { Error: input.error?.Error ?? 'Error', Cause: reason } };
  return failJob(deps, failure, async () => {
    if (!checkpoint) return;
    for (const disk of checkpoint.disks) {
      await failBackup(deps.engine, input.projectId, disk.backupId, reason);
      await deps.jobs.update(input.projectId, disk.jobId, { status: 'FAIL', endTime: now(), errorCode: 'OpenVBS.ServerBackupFailed', failReason: reason });
      await deps.volumes.release(input.projectId, disk.volumeId, disk.jobId);
    }
    const snapshots = checkpoint.disks.flatMap((d) => (d.snapshotId ? [d.snapshotId] : []));
    if (snapshots.length) await deps.provider.releaseSnapshots(input.projectId, snapshots);
    if (checkpoint.status === 'protecting') {
      await deps.checkpoints.update(input.projectId, checkpoint.checkpointId, { status: 'error', failReason: reason.slice(0, 1000), failCode: failure.error?.Error ?? 'Error', finishedAt: now() }, ['protecting']);
    }
  });
}

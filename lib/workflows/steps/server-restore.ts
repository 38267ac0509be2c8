// The server-restore workflow's steps: prepare (the server stopped) → each disk through the volume-restore steps
// → commit (the checkpoint available again, the server started when asked), and its failure path.
import type { FailureInput, ServerRestoreInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';
import { WorkflowStateError, failJob, failureReason, now, requireJob, requireLock, startJob } from './job.ts';
import { requireCheckpoint, serverFailureReason } from './server-backup.ts';
import { abandonRestore } from './volume-restore.ts';
import type { DiskTask } from '../contracts.ts';

export async function serverRestorePrepare(deps: TaskDeps, input: ServerRestoreInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  const checkpoint = await requireCheckpoint(deps, input.projectId, input.backupId);
  if (checkpoint.status !== 'restoring') throw new WorkflowStateError(`server backup ${checkpoint.checkpointId} is not being restored`);
  const subJobs = await deps.jobs.listSubJobs(input.projectId, input.jobId);
  const server = await deps.provider.describeServer(input.projectId, input.serverId);
  // A restore overwrites the disks: the server is off while it runs (the API refused a running local server).
  if (server.status !== 'stopped') await deps.provider.setServerPower(input.projectId, input.serverId, false);
  let bytes = 0;
  const disks: DiskTask[] = [];
  for (const disk of checkpoint.disks) {
    const sub = subJobs.find((j) => j.entities.backup_id === disk.backupId);
    if (!sub) throw new WorkflowStateError(`no job restores disk ${disk.device} of server backup ${checkpoint.checkpointId}`);
    const target = sub.entities.volume_id!;
    await requireLock(deps, input.projectId, target, sub.jobId);
    bytes += disk.sizeBytes;
    disks.push({ projectId: input.projectId, jobId: sub.jobId, backupId: disk.backupId, volumeId: target, name: disk.device });
  }
  await startJob(deps, job, bytes);
  return { disks };
}

export async function serverRestoreCommit(deps: TaskDeps, input: ServerRestoreInput) {
  const checkpoint = await requireCheckpoint(deps, input.projectId, input.backupId);
  if (checkpoint.status === 'restoring') {
    await deps.checkpoints.transition(input.projectId, checkpoint.checkpointId, { from: ['restoring'], to: 'available', backupFrom: ['restoring', 'available'], backupTo: 'available' });
  }
  if (input.powerOn) await deps.provider.setServerPower(input.projectId, input.serverId, true);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now() });
  return { restored: true };
}

/**
 * The failure path: the checkpoint and its disk backups are as restorable as before (`available`); a disk
 * whose restore did not finish is `error` with the reason (it holds part of the backup), every disk's job ends.
 */
export async function serverRestoreFail(deps: TaskDeps, input: FailureInput) {
  const checkpoint = await deps.checkpoints.get(input.projectId, input.backupId);
  const reason = checkpoint ? await serverFailureReason(deps, checkpoint, input.jobId, failureReason(input.error)) : failureReason(input.error);
  const failure: FailureInput = { ...input, error: { Error: input.error?.Error ?? 'Error', Cause: reason } };
  return failJob(deps, failure, async () => {
    if (!checkpoint) return;
    for (const sub of await deps.jobs.listSubJobs(input.projectId, input.jobId)) {
      const target = sub.entities.volume_id;
      if (sub.status !== 'SUCCESS') {
        await deps.jobs.update(input.projectId, sub.jobId, { status: 'FAIL', endTime: now(), errorCode: 'OpenVBS.ServerRestoreFailed', failReason: reason });
        // (On EBS a disk's unfinished restore snapshot is deleted and the disk, never written, keeps its status.)
        if (target && (await abandonRestore(deps, input.projectId, target, sub.jobId))) await deps.volumes.release(input.projectId, target, sub.jobId);
        else if (target) await deps.volumes.release(input.projectId, target, sub.jobId, 'error', `restore of server backup ${checkpoint.checkpointId} did not finish: ${reason}`);
      } else if (target) {
        await deps.volumes.release(input.projectId, target, sub.jobId);
      }
    }
    if (checkpoint.status === 'restoring') {
      await deps.checkpoints.transition(input.projectId, checkpoint.checkpointId, { from: ['restoring'], to: 'available', backupFrom: ['restoring', 'available'], backupTo: 'available' });
    }
  });
}

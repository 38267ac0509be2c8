// What each workflow step does. Handlers in functions/ parse their input and call one of these.
// Every step is idempotent: Step Functions may run a task again after a timeout or a retry.
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { removeBackupAndQueueGc } from '../catalog/gc-queue.ts';
import type { DynamoBackupCatalog } from '../catalog/dynamo-catalog.ts';
import type { JobRecord, JobStore } from '../catalog/jobs.ts';
import type { VolumeStore } from '../catalog/volumes.ts';
import { backupSegment, commitBackup, failBackup, prepareBackup } from '../engine/backup.ts';
import type { EngineDeps } from '../engine/engine.ts';
import { restoreBackupSegment } from '../engine/restore.ts';
import type { Notifier, NotifyEvent, NotifyStatus } from '../notify/notifier.ts';
import type { BackupDeleteInput, FailureInput, SegmentTask, VolumeBackupInput, VolumeRestoreInput } from './contracts.ts';

export interface TaskDeps {
  engine: EngineDeps;
  catalog: DynamoBackupCatalog;
  jobs: JobStore;
  volumes: VolumeStore;
  notifier?: Notifier;
  ddb: DynamoDBDocumentClient;
  catalogTable: string;
}

/** A step found the world not as the workflow expects (not retried; goes to the failure path). */
export class WorkflowStateError extends Error {
  override name = 'WorkflowStateError';
}

/** Job progress is written at most this often from a segment (every 64 MiB of 512 KiB blocks). */
const PROGRESS_EVERY_BLOCKS = 128;

const now = () => new Date().toISOString();

async function requireJob(deps: TaskDeps, projectId: string, jobId: string): Promise<JobRecord> {
  const job = await deps.jobs.get(projectId, jobId);
  if (!job) throw new WorkflowStateError(`job ${jobId} not found`);
  return job;
}

async function requireLock(deps: TaskDeps, projectId: string, volumeId: string, jobId: string) {
  const volume = await deps.volumes.get(projectId, volumeId);
  if (!volume) throw new WorkflowStateError(`volume ${volumeId} not found`);
  if (volume.lockJobId !== jobId) throw new WorkflowStateError(`volume ${volumeId} is not held by job ${jobId}`);
  return volume;
}

function segmentList(count: number) {
  return { segments: Array.from({ length: count }, (_, i) => i) };
}

/** Reports progress to the job in steps, so parallel segments add up without a write per block. */
function progressReporter(deps: TaskDeps, projectId: string, jobId: string, blockSize: number) {
  let pending = 0;
  let writes = Promise.resolve();
  const flush = () => {
    const blocks = pending;
    pending = 0;
    if (blocks) writes = writes.then(() => deps.jobs.addProgress(projectId, jobId, blocks * blockSize)).catch(() => {});
  };
  return {
    onBlocks(n: number) {
      pending += n;
      if (pending >= PROGRESS_EVERY_BLOCKS) flush();
    },
    async done() {
      flush();
      await writes;
    },
  };
}

export function failureReason(error: FailureInput['error']): string {
  if (!error) return 'unknown error';
  if (error.Cause) {
    try {
      const cause = JSON.parse(error.Cause) as { errorMessage?: string };
      if (cause.errorMessage) return cause.errorMessage;
    } catch {
      return error.Cause;
    }
  }
  return error.Error ?? 'unknown error';
}

// ---- volume backup ----

export async function backupPrepare(deps: TaskDeps, input: VolumeBackupInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await requireLock(deps, input.projectId, input.volumeId, input.jobId);
  let backup = await deps.catalog.getBackup(input.projectId, input.backupId);
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
  await deps.jobs.update(input.projectId, input.jobId, {
    status: 'RUNNING',
    beginTime: job.beginTime ?? now(),
    bytesTotal: backup.sizeBytes,
    bytesDone: 0,
  });
  return segmentList(backup.segmentCount);
}

export async function backupSegmentTask(deps: TaskDeps, task: SegmentTask) {
  const progress = progressReporter(deps, task.projectId, task.jobId, deps.engine.config.blockSize);
  try {
    const stats = await backupSegment(deps.engine, task.projectId, task.backupId, task.segment, progress.onBlocks);
    return { segment: task.segment, newChunks: stats.newChunks, storedBytes: stats.storedBytes };
  } finally {
    await progress.done();
  }
}

export async function backupCommit(deps: TaskDeps, input: VolumeBackupInput) {
  const backup = await commitBackup(deps.engine, input.projectId, input.backupId);
  await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  // The job ends last: a client that sees it finished sees the backup and the volume settled too.
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now(), bytesDone: backup.sizeBytes });
  return { backupId: backup.backupId, status: backup.status };
}

export async function backupFail(deps: TaskDeps, input: FailureInput) {
  const reason = failureReason(input.error);
  await failBackup(deps.engine, input.projectId, input.backupId, reason);
  if (input.volumeId) await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'FAIL', endTime: now(), failReason: reason, errorCode: input.error?.Error ?? 'Error' });
  return { failed: true };
}

// ---- volume restore ----

export async function restorePrepare(deps: TaskDeps, input: VolumeRestoreInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await requireLock(deps, input.projectId, input.volumeId, input.jobId);
  const backup = await deps.catalog.getBackup(input.projectId, input.backupId);
  if (!backup || backup.status !== 'restoring') throw new WorkflowStateError(`backup ${input.backupId} is not being restored`);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'RUNNING', beginTime: job.beginTime ?? now(), bytesTotal: backup.sizeBytes, bytesDone: 0 });
  return segmentList(backup.segmentCount);
}

export async function restoreSegmentTask(deps: TaskDeps, task: SegmentTask) {
  const progress = progressReporter(deps, task.projectId, task.jobId, deps.engine.config.blockSize);
  try {
    const written = await restoreBackupSegment(
      deps.engine,
      { projectId: task.projectId, backupId: task.backupId, targetVolumeId: task.volumeId, segment: task.segment },
      progress.onBlocks,
    );
    return { segment: task.segment, bytesWritten: written };
  } finally {
    await progress.done();
  }
}

async function endRestore(deps: TaskDeps, projectId: string, backupId: string) {
  const backup = await deps.catalog.getBackup(projectId, backupId);
  if (backup?.status === 'restoring') await deps.catalog.updateBackup(projectId, backupId, { status: 'available' }, ['restoring']);
}

export async function restoreCommit(deps: TaskDeps, input: VolumeRestoreInput) {
  await endRestore(deps, input.projectId, input.backupId);
  const backup = await deps.catalog.getBackup(input.projectId, input.backupId);
  await deps.volumes.release(input.projectId, input.volumeId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now(), bytesDone: backup?.sizeBytes ?? 0 });
  return { restored: true };
}

export async function restoreFail(deps: TaskDeps, input: FailureInput) {
  const reason = failureReason(input.error);
  // The backup itself is untouched by a failed restore; the target holds partial data.
  await endRestore(deps, input.projectId, input.backupId);
  if (input.volumeId) await deps.volumes.release(input.projectId, input.volumeId, input.jobId, 'error');
  await deps.jobs.update(input.projectId, input.jobId, { status: 'FAIL', endTime: now(), failReason: reason, errorCode: input.error?.Error ?? 'Error' });
  return { failed: true };
}

// ---- delete ----

export async function deleteBackupTask(deps: TaskDeps, input: BackupDeleteInput) {
  const job = await requireJob(deps, input.projectId, input.jobId);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'RUNNING', beginTime: job.beginTime ?? now() });
  const backup = await deps.catalog.getBackup(input.projectId, input.backupId);
  if (backup) {
    if (backup.status !== 'deleting') throw new WorkflowStateError(`backup ${input.backupId} is ${backup.status}, not deleting`);
    const removed = await removeBackupAndQueueGc(deps.ddb, deps.catalogTable, backup);
    if (!removed) throw new WorkflowStateError(`backup ${input.backupId} changed while being deleted`);
  }
  await deps.jobs.update(input.projectId, input.jobId, { status: 'SUCCESS', endTime: now() });
  return { deleted: true };
}

export async function deleteFail(deps: TaskDeps, input: FailureInput) {
  const reason = failureReason(input.error);
  const backup = await deps.catalog.getBackup(input.projectId, input.backupId);
  if (backup?.status === 'deleting') await deps.catalog.updateBackup(input.projectId, input.backupId, { status: 'error', failReason: reason }, ['deleting']);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'FAIL', endTime: now(), failReason: reason, errorCode: input.error?.Error ?? 'Error' });
  return { failed: true };
}

// ---- notify ----

export async function notifyTask(deps: TaskDeps, input: { projectId: string; jobId: string; event: NotifyEvent; status: NotifyStatus }) {
  if (!deps.notifier) return { published: false };
  const job = await deps.jobs.get(input.projectId, input.jobId);
  const what = { backup: 'Backup', restore: 'Restore', delete: 'Backup deletion' }[input.event];
  const target = job?.entities.backup_id ? ` of backup ${job.entities.backup_id}` : '';
  await deps.notifier.publish({
    projectId: input.projectId,
    event: input.event,
    status: input.status,
    subject: `OpenVBS: ${what}${target} ${input.status === 'success' ? 'succeeded' : 'failed'}`,
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

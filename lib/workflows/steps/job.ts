// Helpers every workflow's steps share: the job and volume checks, progress, and ending a job failed.
// Every step is idempotent: Step Functions (and the local runtime's resume) may run a step again.
import type { JobRecord } from '../../catalog/jobs.ts';
import type { FailureInput } from '../contracts.ts';
import type { TaskDeps } from './deps.ts';

/** A step found the world not as the workflow expects (not retried; goes to the failure path). */
export class WorkflowStateError extends Error {
  override name = 'WorkflowStateError';
}

/** Job progress is written at most this often from a segment (every 64 MiB of 512 KiB blocks). */
const PROGRESS_EVERY_BLOCKS = 128;

export const now = () => new Date().toISOString();

export async function requireJob(deps: TaskDeps, projectId: string, jobId: string): Promise<JobRecord> {
  const job = await deps.jobs.get(projectId, jobId);
  if (!job) throw new WorkflowStateError(`job ${jobId} not found`);
  return job;
}

export async function requireLock(deps: TaskDeps, projectId: string, volumeId: string, jobId: string) {
  const volume = await deps.volumes.get(projectId, volumeId);
  if (!volume) throw new WorkflowStateError(`volume ${volumeId} not found`);
  if (volume.lockJobId !== jobId) throw new WorkflowStateError(`volume ${volumeId} is not held by job ${jobId}`);
  return volume;
}

/** Marks the job RUNNING (keeping the first begin time) with the work to do in bytes. */
export async function startJob(deps: TaskDeps, job: JobRecord, bytesTotal: number) {
  await deps.jobs.update(job.projectId, job.jobId, { status: 'RUNNING', beginTime: job.beginTime ?? now(), bytesTotal, bytesDone: 0 });
}

export function segmentList(count: number) {
  return { segments: Array.from({ length: count }, (_, i) => i) };
}

/** Reports progress to the job in steps, so parallel segments add up without a write per block. */
export function progressReporter(deps: TaskDeps, projectId: string, jobId: string, blockSize: number) {
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

/** The readable reason of a caught Step Functions error (`$.error`). */
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

/**
 * The failure path of every workflow: `settle` puts the workflow's resources back (backup status, volume
 * lock), then the job ends FAIL with the reason. The job ends last, so a client that sees it failed sees
 * everything else settled.
 */
export async function failJob(deps: TaskDeps, input: FailureInput, settle: (reason: string) => Promise<void>) {
  const reason = failureReason(input.error);
  await settle(reason);
  await deps.jobs.update(input.projectId, input.jobId, { status: 'FAIL', endTime: now(), failReason: reason, errorCode: input.error?.Error ?? 'Error' });
  return { failed: true };
}

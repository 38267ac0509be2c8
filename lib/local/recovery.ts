// What a start does about the work the previous run left: every execution that was still running is
// resumed (its steps are idempotent, and a segment whose manifest is stored is not redone), and every
// job that never got an execution is ended FAIL through its workflow's own failure step, which puts the
// backup and volume back; a volume still locked by a job that never came to exist is released. Nothing
// stays `creating` or locked, no job stays RUNNING.
import type { ExecutionStore } from '../catalog/executions.ts';
import type { JobStore } from '../catalog/jobs.ts';
import type { VolumeStore } from '../catalog/volumes.ts';
import { workflowOfJobType } from '../workflows/registry.ts';
import type { WorkflowName } from '../workflows/registry.ts';
import type { TaskDeps } from '../workflows/steps/deps.ts';
import { failJobOutsideExecution } from '../workflows/steps/execution-failed.ts';

export interface RecoveryDeps {
  executions: ExecutionStore;
  jobs: JobStore;
  volumes: VolumeStore;
  /** What the workflows' own failure steps run on. */
  tasks: TaskDeps;
  resume(workflow: WorkflowName, name: string, input: unknown): Promise<void>;
}

export interface RecoveryReport {
  resumed: string[];
  failed: string[];
  /** Volumes released because the job holding them never came to exist (a crash between lock and job). */
  released: string[];
}

const ENDED = new Set(['SUCCESS', 'FAIL']);

export async function recoverInterrupted(deps: RecoveryDeps): Promise<RecoveryReport> {
  const report: RecoveryReport = { resumed: [], failed: [], released: [] };
  const recorded = await deps.executions.listRunning();
  const live = new Set<string>();
  for (const execution of recorded) {
    const input = execution.input as { projectId?: string };
    const job = input.projectId ? await deps.jobs.get(input.projectId, execution.name) : undefined;
    if (!job || ENDED.has(job.status)) {
      await deps.executions.end(execution.name);
      continue;
    }
    live.add(job.jobId);
    await deps.resume(execution.workflow, execution.name, execution.input);
    report.resumed.push(job.jobId);
  }
  for (const job of await deps.jobs.listUnfinished()) {
    // A disk's job is its server job's: the server job's failure path ends it.
    if (live.has(job.jobId) || job.parentJobId) continue;
    const workflow = workflowOfJobType(job.jobType);
    if (!workflow) continue;
    await failJobOutsideExecution(deps.tasks, workflow, {
      projectId: job.projectId,
      jobId: job.jobId,
      backupId: job.entities.backup_id ?? '',
      ...(job.entities.volume_id ? { volumeId: job.entities.volume_id } : {}),
      error: { Error: 'OpenVBS.Interrupted', Cause: 'the service stopped before this job started running; nothing of it was kept' },
    });
    report.failed.push(job.jobId);
  }
  for (const volume of await deps.volumes.listLocked()) {
    const holder = await deps.jobs.get(volume.projectId, volume.lockJobId!);
    if (holder && !ENDED.has(holder.status)) continue;
    await deps.volumes.release(volume.projectId, volume.volumeId, volume.lockJobId!);
    report.released.push(volume.volumeId);
  }
  return report;
}

// The failure path of an execution that ended without finishing it: FAILED where no Catch saw the error (the
// history limit, a failing failure step), TIMED_OUT, or ABORTED (StopExecution, a cancel). The workflow's own fail
// step and failure notification run here, in-process. On AWS an EventBridge rule hands every such execution to
// the `execution-failed` handler (functions/execution-failed.ts).
import type { FailureInput } from '../contracts.ts';
import { WORKFLOWS } from '../registry.ts';
import type { WorkflowName } from '../registry.ts';
import { deleteFail } from './backup-delete.ts';
import { deleteCheckpointFail } from './checkpoint-delete.ts';
import type { TaskDeps } from './deps.ts';
import { notifyStep } from './notify.ts';
import { backupFail } from './volume-backup.ts';
import { restoreFail } from './volume-restore.ts';
import { serverBackupFail } from './server-backup.ts';
import { serverRestoreFail } from './server-restore.ts';

/** The execution statuses that leave a job to this path. */
export const ENDED_BADLY = ['FAILED', 'TIMED_OUT', 'ABORTED'] as const;
export type EndedBadly = (typeof ENDED_BADLY)[number];

type FailHandler = (typeof WORKFLOWS)[WorkflowName]['fail'];

/** Each workflow's `fail` handler as the step it runs. */
const FAIL_STEPS: Record<FailHandler, (deps: TaskDeps, input: FailureInput) => Promise<unknown>> = {
  'backup-fail': backupFail,
  'restore-fail': restoreFail,
  'delete-fail': deleteFail,
  'server-backup-fail': serverBackupFail,
  'server-restore-fail': serverRestoreFail,
  'delete-checkpoint-fail': deleteCheckpointFail,
};

export interface EndedExecution {
  workflow: WorkflowName;
  status: EndedBadly;
  /** The execution's input, as the API started it. */
  input: unknown;
  /** The error and cause Step Functions reports for the execution, when it has them. */
  error?: string | null | undefined;
  cause?: string | null | undefined;
}

export interface EndedExecutionResult {
  /** `failed`: the failure path ran now; `ended`: the job had ended already; `no-job`: there is no such job. */
  outcome: 'failed' | 'ended' | 'no-job';
  notified: boolean;
}

const DEFAULT_ERRORS: Record<EndedBadly, string> = { FAILED: 'States.Runtime', TIMED_OUT: 'States.Timeout', ABORTED: 'States.Aborted' };

function defaultCause(ended: EndedExecution): string {
  switch (ended.status) {
    case 'FAILED':
      return `the ${ended.workflow} execution failed outside its failure path`;
    case 'TIMED_OUT':
      return `the ${ended.workflow} execution ran longer than its timeout of ${WORKFLOWS[ended.workflow].timeoutSeconds / 3600} h`;
    case 'ABORTED':
      return `the ${ended.workflow} execution was stopped`;
  }
}

/**
 * Ends the execution's job FAIL through the workflow's fail step (backup `error`, volume released, ...) and sends
 * the failure notification. An execution whose own failure path ran ends FAILED as well (its last state is a Fail
 * state), and so does one whose job ended before the execution did: a job that has ended is left as it is, with
 * its reason, and notified no second time. The fail steps are idempotent, so a path cut short is simply redone.
 */
export async function failEndedExecution(deps: TaskDeps, ended: EndedExecution): Promise<EndedExecutionResult> {
  const input = WORKFLOWS[ended.workflow].input.parse(ended.input);
  // Volume backups and restores hold a volume; a delete does not, and a server job's disks are in its checkpoint.
  const { volumeId } = input as { volumeId?: string };
  return failJobOutsideExecution(deps, ended.workflow, {
    projectId: input.projectId,
    jobId: input.jobId,
    backupId: input.backupId,
    ...(volumeId ? { volumeId } : {}),
    error: { Error: ended.error || DEFAULT_ERRORS[ended.status], Cause: ended.cause || defaultCause(ended) },
  });
}

/**
 * The workflow's failure path for a job no execution will finish: its fail step, then the failure
 * notification; a job that has ended (or does not exist) is left as it is. Also used by the local runtime for
 * jobs a crash cut off before their execution started.
 */
export async function failJobOutsideExecution(deps: TaskDeps, workflow: WorkflowName, failure: FailureInput): Promise<EndedExecutionResult> {
  const spec = WORKFLOWS[workflow];
  const job = await deps.jobs.get(failure.projectId, failure.jobId);
  if (!job) return { outcome: 'no-job', notified: false };
  if (job.status === 'SUCCESS' || job.status === 'FAIL') return { outcome: 'ended', notified: false };
  await FAIL_STEPS[spec.fail](deps, failure);
  // As in the state machines, a lost notification does not undo the failure path.
  const notified = await notifyStep(deps, { projectId: failure.projectId, jobId: failure.jobId, event: spec.notifyEvent, status: 'failure' }).then(
    (res) => res.published,
    () => false,
  );
  return { outcome: 'failed', notified };
}

// The one list of workflows and Lambda handlers. The CDK app (state machines, function environment),
// the Step Functions starter, the local runtime and the handler wrapper all read it; adding a workflow
// adds an entry here and its steps, nothing else to keep in step by hand.
import type { z } from 'zod';
import type { JobType } from '../catalog/jobs.ts';
import type { NotifyEvent } from '../notify/notifier.ts';
import { BackupDeleteInput, CheckpointDeleteInput, ServerBackupInput, ServerRestoreInput, VolumeBackupInput, VolumeRestoreInput } from './contracts.ts';

/** Every handler module `functions/<name>.ts`. */
export const HANDLER_NAMES = [
  'api',
  'authorizer',
  'backup-prepare',
  'backup-segment',
  'backup-commit',
  'backup-fail',
  'restore-prepare',
  'restore-segment',
  'restore-commit',
  'restore-fail',
  'delete-backup',
  'delete-fail',
  'server-backup-prepare',
  'server-backup-commit',
  'server-backup-fail',
  'server-restore-prepare',
  'server-restore-commit',
  'server-restore-fail',
  'delete-checkpoint',
  'delete-checkpoint-fail',
  'notify',
  'policy-tick',
  'check-run',
  'gc-run',
  'execution-failed',
] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

interface WorkflowSpecBase {
  /** PascalCase id: the state machine's logical id is `<id>StateMachine`, its output `<id>StateMachineArn`. */
  id: string;
  /** The api function's environment variable holding the state machine ARN. */
  arnEnv: string;
  /** Validates the execution input (what the API starts it with). */
  input: z.ZodType<{ projectId: string; jobId: string; backupId: string }>;
  notifyEvent: NotifyEvent;
  /** The VBS job type of the jobs this workflow runs. */
  jobType: JobType;
  /** The failure path's step: marks the job failed and puts its resources back. */
  fail: HandlerName;
  /**
   * The execution's timeout (the state machine's TimeoutSeconds): generous for the largest volume the API
   * accepts (64 TiB in 47 h at 4 segment tasks of 100 MiB/s each; the engine does about 500 MB/s a core).
   * An execution that runs out of it ends TIMED_OUT, and `execution-failed` runs its failure path.
   */
  timeoutSeconds: number;
}

/** prepare → Map over segments → commit, as backups and restores run. */
export interface SegmentedWorkflowSpec extends WorkflowSpecBase {
  shape: 'segmented';
  prepare: HandlerName;
  segment: HandlerName;
  commit: HandlerName;
  /** The Map state's name. */
  mapName: string;
}

/**
 * prepare → Map over the disks the prepare step returns, each disk through the steps of a segmented workflow
 * (its prepare, its segments Map, its commit; on failure its fail step ends that disk's job) → commit. Server
 * backups and restores run this way: every disk in the one execution, the disks' segments in nested Maps.
 */
export interface FanOutWorkflowSpec extends WorkflowSpecBase {
  shape: 'fanout';
  prepare: HandlerName;
  /** The segmented workflow each disk goes through. */
  perDisk: 'volume-backup' | 'volume-restore';
  commit: HandlerName;
  /** The disks Map state's name. */
  mapName: string;
}

/** One step, then notify. */
export interface SingleStepWorkflowSpec extends WorkflowSpecBase {
  shape: 'single';
  step: HandlerName;
  /** The step's state name. */
  stepName: string;
}

export type WorkflowSpec = SegmentedWorkflowSpec | FanOutWorkflowSpec | SingleStepWorkflowSpec;

export const WORKFLOWS = {
  'volume-backup': {
    shape: 'segmented',
    id: 'VolumeBackup',
    arnEnv: 'OPENVBS_WORKFLOW_VOLUME_BACKUP_ARN',
    input: VolumeBackupInput,
    notifyEvent: 'backup',
    jobType: 'bksCreateBackup',
    prepare: 'backup-prepare',
    segment: 'backup-segment',
    commit: 'backup-commit',
    fail: 'backup-fail',
    timeoutSeconds: 48 * 3600,
    mapName: 'BackupSegments',
  },
  'volume-restore': {
    shape: 'segmented',
    id: 'VolumeRestore',
    arnEnv: 'OPENVBS_WORKFLOW_VOLUME_RESTORE_ARN',
    input: VolumeRestoreInput,
    notifyEvent: 'restore',
    jobType: 'bksRestoreBackup',
    prepare: 'restore-prepare',
    segment: 'restore-segment',
    commit: 'restore-commit',
    fail: 'restore-fail',
    timeoutSeconds: 48 * 3600,
    mapName: 'RestoreSegments',
  },
  'backup-delete': {
    shape: 'single',
    id: 'BackupDelete',
    arnEnv: 'OPENVBS_WORKFLOW_BACKUP_DELETE_ARN',
    input: BackupDeleteInput,
    notifyEvent: 'delete',
    jobType: 'bksDeleteBackup',
    step: 'delete-backup',
    stepName: 'DeleteBackup',
    fail: 'delete-fail',
    timeoutSeconds: 3600,
  },
  'server-backup': {
    shape: 'fanout',
    id: 'ServerBackup',
    arnEnv: 'OPENVBS_WORKFLOW_SERVER_BACKUP_ARN',
    input: ServerBackupInput,
    notifyEvent: 'backup',
    jobType: 'bksCreateServerBackup',
    prepare: 'server-backup-prepare',
    perDisk: 'volume-backup',
    commit: 'server-backup-commit',
    fail: 'server-backup-fail',
    timeoutSeconds: 48 * 3600,
    mapName: 'BackupDisks',
  },
  'server-restore': {
    shape: 'fanout',
    id: 'ServerRestore',
    arnEnv: 'OPENVBS_WORKFLOW_SERVER_RESTORE_ARN',
    input: ServerRestoreInput,
    notifyEvent: 'restore',
    jobType: 'bksRestoreServerBackup',
    prepare: 'server-restore-prepare',
    perDisk: 'volume-restore',
    commit: 'server-restore-commit',
    fail: 'server-restore-fail',
    timeoutSeconds: 48 * 3600,
    mapName: 'RestoreDisks',
  },
  'checkpoint-delete': {
    shape: 'single',
    id: 'CheckpointDelete',
    arnEnv: 'OPENVBS_WORKFLOW_CHECKPOINT_DELETE_ARN',
    input: CheckpointDeleteInput,
    notifyEvent: 'delete',
    jobType: 'bksDeleteServerBackup',
    step: 'delete-checkpoint',
    stepName: 'DeleteCheckpoint',
    fail: 'delete-checkpoint-fail',
    timeoutSeconds: 3600,
  },
} as const satisfies Record<string, WorkflowSpec>;

export type WorkflowName = keyof typeof WORKFLOWS;
export const WORKFLOW_NAMES = Object.keys(WORKFLOWS) as WorkflowName[];

export function workflowSpec(name: WorkflowName): WorkflowSpec {
  return WORKFLOWS[name];
}

/** The workflow that runs jobs of this type. */
export function workflowOfJobType(jobType: JobType): WorkflowName | undefined {
  return WORKFLOW_NAMES.find((name) => WORKFLOWS[name].jobType === jobType);
}

export function stateMachineLogicalId(workflow: WorkflowName): string {
  return `${WORKFLOWS[workflow].id}StateMachine`;
}

/** Starts and stops workflow executions (Step Functions on AWS, the local runtime locally). */
export interface WorkflowStarter {
  start(workflow: WorkflowName, name: string, input: unknown): Promise<{ executionArn: string }>;
  /**
   * Stops a running execution; its workflow's failure path then ends the job with `cause` as the reason (on AWS
   * through the execution-failed rule). A finished execution is left alone.
   */
  stop(executionArn: string, reason: { error: string; cause: string }): Promise<void>;
}

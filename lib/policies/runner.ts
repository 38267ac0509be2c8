// A policy run: one ordinary backup job per resource of the policy (a volume backup for VBS, a server backup
// for CSBS), named `autobk_…` and tagged with the policy's tags, each recorded as a task. Nothing here runs a
// backup itself: the backup services start the jobs (with their locks and checks), the workflows do the work.
//
// Tasks and retention. A task is WAITING when written, RUNNING once its job has started, and ends when its
// job ends (EXECUTE_SUCCESS, EXECUTE_FAIL, EXECUTE_TIMEOUT when the workflow ran out of time), or SKIP when
// the resource could not be backed up at all (busy with another job, in error, gone). Jobs end inside their
// workflows, which know nothing of policies: `settle` notices ended jobs (the tick calls it at every pass,
// execute-now and the task list before they answer), ends their tasks and then applies retention to that
// resource. So expired backups go at the first pass after the run's backup ends, never before it has.
//
// Retention deletes only backups the policy made (its own list, see ../catalog/policies.ts), through the
// backup services' delete, so a backup that is being restored is not deleted under the restore (the service
// refuses; it stays and the next run deletes it), and a backup shared with another project is kept while
// shared (the receiver may be creating a disk from it; once the shares are gone, the next run deletes it).
import { OPEN_TASK_STATUSES } from '../catalog/policies.ts';
import type { PolicyBackupRef, PolicyRecord, PolicyStore, PolicyTask, ResourceType, TaskStatus } from '../catalog/policies.ts';
import type { JobStore } from '../catalog/jobs.ts';
import { formatNotification } from '../notify/message.ts';
import type { Notifier } from '../notify/notifier.ts';
import { asPolicyRun, POLICY_BACKUP_PREFIX } from '../service/backup-rules.ts';
import type { BackupTag } from '../service/backup-rules.ts';
import { ServiceError } from '../service/errors.ts';
import { newJobId } from '../service/ids.ts';
import type { Clock } from '../util/clock.ts';
import { expiredBackups } from './retention.ts';
import type { RetentionCandidate, RetentionPolicy } from './retention.ts';
import { localStamp } from './schedule.ts';

/** What a run asks of one resource's backup. */
export interface StartRequest {
  name: string;
  tags: BackupTag[];
  policyId: string;
  trigger: PolicyTask['trigger'];
}

/** How a run backs up one kind of resource, and how retention sees and deletes what it made. */
export interface ResourceBackups {
  /** Starts the backup job (throws ServiceError when the resource cannot be backed up now). */
  start(projectId: string, resourceId: string, request: StartRequest): Promise<{ jobId: string; backupId: string }>;
  /** The backup's status, or undefined once it is gone. */
  status(projectId: string, backupId: string): Promise<string | undefined>;
  /** Starts deleting it (throws ServiceError when its status does not allow that now). */
  delete(projectId: string, backupId: string): Promise<void>;
  /** True while the backup is shared with another project. */
  isShared?(projectId: string, backupId: string): Promise<boolean>;
}

export interface PolicyRunnerDeps {
  policies: PolicyStore;
  jobs: JobStore;
  resources: Partial<Record<ResourceType, ResourceBackups>>;
  clock: Clock;
  /** How the policy's backups expire (VBS and CSBS differ); undefined: they never do. */
  retentionOf: (policy: PolicyRecord) => RetentionPolicy | undefined;
  /** Tells the project when a run has ended (event `policy`: how many of its backups succeeded, failed, skipped). */
  notifier?: Notifier;
}

export interface RunStarted {
  projectId: string;
  policyId: string;
  slot: string;
  late: boolean;
  tasks: PolicyTask[];
}

/** What retention did for one resource. */
export interface PruneReport {
  deleted: string[];
  /** Expired, but kept for now, with why. */
  kept: Array<{ backupId: string; reason: string }>;
}

/** A WAITING task without a job after this long was cut short before its job started. */
const STALE_WAITING_MS = 10 * 60 * 1000;
/** A job that ended this way ran out of its workflow's time. */
const TIMEOUT_ERRORS = new Set(['States.Timeout', 'TIMED_OUT']);

export class PolicyRunner {
  private readonly deps: PolicyRunnerDeps;

  constructor(deps: PolicyRunnerDeps) {
    this.deps = deps;
  }

  private now(): Date {
    return this.deps.clock.now();
  }

  /** The same runner reading another clock (`openvbs tick --at`). */
  withClock(clock: Clock): PolicyRunner {
    return new PolicyRunner({ ...this.deps, clock });
  }

  /** Starts one backup per resource of the policy (or of those of `only` that are in it) for `slot`. */
  async run(policy: PolicyRecord, slot: Date, options: { late: boolean; trigger: PolicyTask['trigger']; only?: readonly string[] }): Promise<RunStarted> {
    const { projectId, policyId } = policy;
    const all = await this.deps.policies.members(projectId, policyId);
    const members = options.only ? all.filter((m) => options.only!.includes(m.resourceId)) : all;
    const name = `${POLICY_BACKUP_PREFIX}${localStamp(slot, policy.timeZone)}`;
    const tasks: PolicyTask[] = [];
    for (const member of members) {
      const task: PolicyTask = {
        projectId,
        policyId,
        taskId: newJobId(),
        resourceId: member.resourceId,
        resourceType: member.resourceType,
        status: 'WAITING',
        scheduledAt: slot.toISOString(),
        late: options.late,
        trigger: options.trigger,
        backupName: name,
        createdAt: this.now().toISOString(),
      };
      await this.deps.policies.putTask(task);
      tasks.push(await this.startTask(policy, task));
    }
    // Every backup refused at once: the run has ended already.
    if (tasks.length && tasks.every((t) => !OPEN_TASK_STATUSES.includes(t.status))) await this.notifyRun(policy, tasks);
    return { projectId, policyId, slot: slot.toISOString(), late: options.late, tasks };
  }

  private async startTask(policy: PolicyRecord, task: PolicyTask): Promise<PolicyTask> {
    const ops = this.deps.resources[task.resourceType];
    if (!ops) return this.end(task, 'SKIP', `${task.resourceType} backups are not available here`);
    try {
      const { jobId, backupId } = await asPolicyRun(() => ops.start(task.projectId, task.resourceId, { name: task.backupName, tags: policy.tags, policyId: policy.policyId, trigger: task.trigger }));
      await this.deps.policies.recordBackup(task.projectId, { policyId: task.policyId, resourceId: task.resourceId, slot: task.scheduledAt, backupId });
      return await this.deps.policies.updateTask(task, { status: 'RUNNING', jobId, backupId });
    } catch (err) {
      // Refused (busy, in error, gone): skipped; anything else (the workflow could not start...): failed.
      const refused = err instanceof ServiceError && err.httpStatus < 500;
      const reason = err instanceof ServiceError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
      return this.end(task, refused ? 'SKIP' : 'EXECUTE_FAIL', reason);
    }
  }

  private end(task: PolicyTask, status: TaskStatus, reason?: string, finishedAt?: string): Promise<PolicyTask> {
    return this.deps.policies.updateTask(task, { status, finishedAt: finishedAt ?? this.now().toISOString(), ...(reason !== undefined ? { reason } : {}) });
  }

  /**
   * Ends the open tasks (of a policy, a project, or all) whose jobs have ended, then applies retention to each
   * resource whose backup succeeded. Returns the tasks it ended.
   */
  async settle(scope?: { projectId: string; policyId?: string }): Promise<PolicyTask[]> {
    const ended: PolicyTask[] = [];
    for (const task of await this.deps.policies.openTasks(scope)) {
      if (!task.jobId) {
        if (this.now().getTime() - Date.parse(task.createdAt) > STALE_WAITING_MS) ended.push(await this.end(task, 'EXECUTE_FAIL', 'the run was cut short before its backup started'));
        continue;
      }
      const job = await this.deps.jobs.get(task.projectId, task.jobId);
      if (!job) {
        ended.push(await this.end(task, 'EXECUTE_FAIL', `job ${task.jobId} not found`));
        continue;
      }
      if (job.status !== 'SUCCESS' && job.status !== 'FAIL') continue;
      const status: TaskStatus = job.status === 'SUCCESS' ? 'EXECUTE_SUCCESS' : TIMEOUT_ERRORS.has(job.errorCode ?? '') ? 'EXECUTE_TIMEOUT' : 'EXECUTE_FAIL';
      // The task ends when its job did (the job's own time), or now when the job has no end time.
      const finishedAt = job.endTime && job.endTime <= this.now().toISOString() ? job.endTime : this.now().toISOString();
      ended.push(await this.end(task, status, job.status === 'FAIL' ? job.failReason : undefined, finishedAt));
    }
    await this.notifyEndedRuns(ended);
    for (const task of ended) {
      if (task.status !== 'EXECUTE_SUCCESS') continue;
      const policy = await this.deps.policies.get(task.projectId, task.policyId);
      if (policy && (await this.deps.policies.policyOf(task.projectId, task.resourceId)) === policy.policyId) await this.prune(policy, task.resourceId, task.resourceType);
    }
    return ended;
  }

  /** One notification per run whose last open task is among `ended`. */
  private async notifyEndedRuns(ended: PolicyTask[]): Promise<void> {
    if (!this.deps.notifier) return;
    const runs = new Map<string, PolicyTask>();
    for (const t of ended) runs.set(`${t.projectId}#${t.policyId}#${t.scheduledAt}#${t.trigger}`, t);
    for (const t of runs.values()) {
      const since = new Date(Date.parse(t.createdAt) - STALE_WAITING_MS).toISOString();
      const tasks = (await this.deps.policies.tasks(t.projectId, t.policyId, since)).filter((x) => x.scheduledAt === t.scheduledAt && x.trigger === t.trigger);
      if (tasks.some((x) => OPEN_TASK_STATUSES.includes(x.status))) continue;
      const policy = await this.deps.policies.get(t.projectId, t.policyId);
      await this.notifyRun(policy ?? { projectId: t.projectId, policyId: t.policyId, name: '' }, tasks);
    }
  }

  /** Publishes the end of one run (its tasks all closed); a notifier that fails does not fail the tick. */
  private async notifyRun(policy: Pick<PolicyRecord, 'projectId' | 'policyId' | 'name'>, tasks: PolicyTask[]): Promise<void> {
    if (!this.deps.notifier || !tasks.length) return;
    const count = (status: TaskStatus) => tasks.filter((t) => t.status === status).length;
    const failed = tasks.filter((t) => t.status !== 'EXECUTE_SUCCESS');
    const ends = tasks.map((t) => t.finishedAt ?? t.createdAt).sort();
    const first = tasks[0]!;
    const notification = formatNotification({
      projectId: policy.projectId,
      event: 'policy',
      status: failed.length ? 'failure' : 'success',
      jobType: first.trigger === 'manual' ? 'policyRunNow' : 'policyRun',
      resources: [{ kind: 'policy', id: policy.policyId, name: policy.name }, ...tasks.map((t) => ({ kind: t.resourceType, id: t.resourceId }))],
      beginTime: tasks.map((t) => t.createdAt).sort()[0]!,
      endTime: ends[ends.length - 1]!,
      ...(failed.length ? { reason: failed.map((t) => `${t.resourceType} ${t.resourceId}: ${t.status}${t.reason ? ` (${t.reason})` : ''}`).join('; ') } : {}),
      facts: {
        Slot: first.scheduledAt,
        Late: first.late ? 'yes' : 'no',
        'Backups succeeded': count('EXECUTE_SUCCESS'),
        'Backups failed': count('EXECUTE_FAIL') + count('EXECUTE_TIMEOUT'),
        'Backups skipped': count('SKIP'),
      },
    });
    await this.deps.notifier.publish(notification).catch(() => undefined);
  }

  /** Deletes the expired backups the policy made of one resource. */
  async prune(policy: PolicyRecord, resourceId: string, resourceType: ResourceType): Promise<PruneReport> {
    const report: PruneReport = { deleted: [], kept: [] };
    const retention = this.deps.retentionOf(policy);
    const ops = this.deps.resources[resourceType];
    if (!retention || !ops) return report;
    const { projectId } = policy;
    const refs = await this.deps.policies.madeBackups(projectId, policy.policyId, resourceId);
    const candidates: Array<RetentionCandidate & { ref: PolicyBackupRef }> = [];
    for (const ref of refs) {
      const status = await ops.status(projectId, ref.backupId);
      // Gone (deleted by retention earlier, or by the user): nothing left to track.
      if (status === undefined) await this.deps.policies.forgetBackup(projectId, ref);
      else candidates.push({ backupId: ref.backupId, slot: ref.slot, status, ref });
    }
    for (const c of expiredBackups(candidates, retention, this.now())) {
      if (c.status !== 'available' && c.status !== 'error') {
        report.kept.push({ backupId: c.backupId, reason: `${c.status}: retention deletes it on a later run` });
        continue;
      }
      if (await ops.isShared?.(projectId, c.backupId)) {
        report.kept.push({ backupId: c.backupId, reason: 'shared with another project: kept until its shares are removed' });
        continue;
      }
      try {
        await ops.delete(projectId, c.backupId);
        report.deleted.push(c.backupId);
      } catch (err) {
        if (!(err instanceof ServiceError)) throw err;
        report.kept.push({ backupId: c.backupId, reason: `${err.code}: ${err.message}` });
      }
    }
    return report;
  }
}

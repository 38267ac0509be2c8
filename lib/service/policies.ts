// VBS backup policies: create, list, update (enable / disable through scheduled_policy.status), delete;
// associate and disassociate volumes; execute now; the tasks of its runs; policy tags. The runs themselves
// and retention are lib/policies/ (runner, tick); time comes from the injected clock.
//
// Validation (codes in ./errors.ts): every field with its documented range; where VBS pages disagree, the
// more permissive value (frequency 1-30 days). Both members of a pair may be given; `frequency` wins over
// `week_frequency` and `rentention_num` over `rentention_day` when the policy runs, and both are kept as given.
import { PolicyNotFoundError, TASK_RETENTION_DAYS } from '../catalog/policies.ts';
import type { PolicyRecord, PolicyStore, PolicyTask, ResourceType, TaskStatus, VbsScheduledPolicy } from '../catalog/policies.ts';
import type { CatalogStores } from '../catalog/stores.ts';
import type { VolumeStore } from '../catalog/volumes.ts';
import type { Notifier } from '../notify/notifier.ts';
import { PolicyRunner } from '../policies/runner.ts';
import type { ResourceBackups } from '../policies/runner.ts';
import { WEEKDAYS, localDate, zoneOf } from '../policies/schedule.ts';
import { retentionOf, runTick } from '../policies/tick.ts';
import type { TickReport } from '../policies/tick.ts';
import { systemClock } from '../util/clock.ts';
import type { Clock } from '../util/clock.ts';
import type { BackupService } from './backups.ts';
import { distinctTags, validateTags } from './backup-rules.ts';
import type { BackupTag } from './backup-rules.ts';
import { badRequest, conflict, notFound } from './errors.ts';
import type { ResourceTags } from './resource-tags.ts';
import type { TagFilter } from './resource-tags.ts';
import { checkProjectId, isId, newBackupId } from './ids.ts';
import { policiesOfKind, policyNotFound, policyOfKind, policyTagging, rethrowNotFound } from './policy-records.ts';
import { charLength } from './validation.ts';

export const POLICY_NAME_MAX = 64;
export const START_TIMES_MAX = 24;
export const FREQUENCY_RANGE = [1, 30] as const;
export const RETENTION_NUM_RANGE = [2, 99999] as const;
export const RETENTION_DAY_RANGE = [2, 99999] as const;

const invalid = (message: string) => badRequest('OpenVBS.1801', message);

/** A `scheduled_policy` as the API receives it (every field optional; create requires some). */
export interface ScheduledPolicyInput {
  startTime?: string;
  frequency?: number;
  weekFrequency?: string[];
  retentionNum?: number;
  retentionDay?: number;
  remainFirstBackupOfCurMonth?: boolean;
  status?: 'ON' | 'OFF';
}

export interface PolicyInput {
  name?: string;
  scheduled?: ScheduledPolicyInput;
  timeZone?: string;
  tags?: BackupTag[];
}

export interface PolicyView {
  policy: PolicyRecord;
  resourceCount: number;
}

export interface ResourceOutcome {
  resourceId: string;
  resourceType: string;
  availabilityZone?: string;
  errorCode?: string;
  errorMessage?: string;
}

export interface TasksQuery {
  sortDir?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
  marker?: string;
  status?: TaskStatus;
  jobId?: string;
}

export type { TagFilter } from './resource-tags.ts';

export interface PolicyServiceDeps {
  policies: PolicyStore;
  volumes: VolumeStore;
  runner: PolicyRunner;
  clock: Clock;
  availabilityZone?: string;
}

function checkName(name: string): void {
  const length = charLength(name);
  if (length < 1 || length > POLICY_NAME_MAX) throw invalid(`backup_policy_name must be 1-${POLICY_NAME_MAX} characters`);
  if (!/^[\p{L}\p{N}_-]+$/u.test(name)) throw invalid('backup_policy_name may contain only letters, digits, underscores and hyphens');
  if (name.toLowerCase().startsWith('default')) throw invalid('backup_policy_name must not start with "default"');
}

function checkInt(value: number | undefined, what: string, [min, max]: readonly [number, number]): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${what} must be an integer from ${min} to ${max}`);
}

/** "02:00,14:00" as distinct "HH:mm", in order. */
export function parseStartTimes(startTime: string): string[] {
  const parts = startTime.split(',').map((t) => t.trim());
  const times: string[] = [];
  for (const part of parts) {
    const m = /^(\d{1,2}):(\d{2})$/.exec(part);
    if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) throw invalid(`start_time "${part}" is not HH:mm`);
    times.push(`${m[1]!.padStart(2, '0')}:${m[2]}`);
  }
  if (new Set(times).size !== times.length) throw invalid('start_time lists a time twice');
  if (times.length > START_TIMES_MAX) throw invalid(`start_time lists more than ${START_TIMES_MAX} times (a policy runs at most ${START_TIMES_MAX} times a day)`);
  return times.sort();
}

function checkWeekFrequency(days: string[] | undefined): string[] | undefined {
  if (days === undefined) return undefined;
  const upper = days.map((d) => d.toUpperCase());
  if (!upper.length) throw invalid('week_frequency must name at least one day');
  for (const d of upper) if (!(WEEKDAYS as readonly string[]).includes(d)) throw invalid(`week_frequency: "${d}" is not one of ${WEEKDAYS.join(', ')}`);
  if (new Set(upper).size !== upper.length) throw invalid('week_frequency names a day twice');
  return upper.sort((a, b) => WEEKDAYS.indexOf(a as never) - WEEKDAYS.indexOf(b as never));
}

function checkTimeZone(timeZone: string | undefined): void {
  if (timeZone !== undefined && !zoneOf(timeZone)) throw invalid(`time_zone "${timeZone}" is not UTC±HH:MM (such as UTC+08:00) or a known zone name`);
}

function checkTags(tags: BackupTag[] | undefined): BackupTag[] | undefined {
  if (tags === undefined) return undefined;
  validateTags(tags);
  return distinctTags(tags);
}

export class PolicyService {
  private readonly deps: PolicyServiceDeps;
  readonly tagging: ResourceTags<PolicyRecord>;

  constructor(deps: PolicyServiceDeps) {
    this.deps = deps;
    this.tagging = policyTagging(deps.policies, 'vbs', deps.clock);
  }

  private now(): Date {
    return this.deps.clock.now();
  }

  async policy(projectId: string, policyId: string): Promise<PolicyRecord> {
    return policyOfKind(this.deps.policies, 'vbs', projectId, policyId);
  }

  async create(projectId: string, input: PolicyInput): Promise<PolicyView> {
    checkProjectId(projectId);
    if (input.name === undefined) throw invalid('backup_policy_name is required');
    checkName(input.name);
    const s = input.scheduled;
    if (!s) throw invalid('scheduled_policy is required');
    if (s.startTime === undefined) throw invalid('scheduled_policy.start_time is required');
    if (s.frequency === undefined && s.weekFrequency === undefined) throw invalid('scheduled_policy needs frequency or week_frequency');
    if (s.retentionNum === undefined && s.retentionDay === undefined) throw invalid('scheduled_policy needs rentention_num or rentention_day');
    const scheduled = this.scheduled(undefined, s);
    checkTimeZone(input.timeZone);
    const tags = checkTags(input.tags) ?? [];
    const now = this.now();
    const timeZone = input.timeZone ?? 'UTC';
    const policy: PolicyRecord = {
      projectId,
      policyId: newBackupId(),
      kind: 'vbs',
      name: input.name,
      enabled: (s.status ?? 'ON') === 'ON',
      scheduled,
      timeZone,
      ...(input.timeZone !== undefined ? { timeZoneGiven: true } : {}),
      tags,
      anchorDate: localDate(now, timeZone),
      checkedUntil: now.toISOString(),
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    await this.deps.policies.create(policy);
    return { policy, resourceCount: 0 };
  }

  /** `scheduled_policy` merged over what the policy had, checked. */
  private scheduled(current: VbsScheduledPolicy | undefined, s: ScheduledPolicyInput): VbsScheduledPolicy {
    checkInt(s.frequency, 'frequency', FREQUENCY_RANGE);
    checkInt(s.retentionNum, 'rentention_num', RETENTION_NUM_RANGE);
    checkInt(s.retentionDay, 'rentention_day', RETENTION_DAY_RANGE);
    const weekFrequency = checkWeekFrequency(s.weekFrequency);
    const startTimes = s.startTime !== undefined ? parseStartTimes(s.startTime) : current?.startTimes;
    if (!startTimes) throw invalid('scheduled_policy.start_time is required');
    const pick = <T>(given: T | undefined, had: T | undefined) => (given !== undefined ? given : had);
    const frequency = pick(s.frequency, current?.frequency);
    const week = pick(weekFrequency, current?.weekFrequency);
    const retentionNum = pick(s.retentionNum, current?.retentionNum);
    const retentionDay = pick(s.retentionDay, current?.retentionDay);
    return {
      startTimes,
      ...(frequency !== undefined ? { frequency } : {}),
      ...(week !== undefined ? { weekFrequency: week } : {}),
      ...(retentionNum !== undefined ? { retentionNum } : {}),
      ...(retentionDay !== undefined ? { retentionDay } : {}),
      remainFirstBackupOfCurMonth: s.remainFirstBackupOfCurMonth ?? current?.remainFirstBackupOfCurMonth ?? false,
    };
  }

  async update(projectId: string, policyId: string, input: PolicyInput): Promise<PolicyView> {
    const policy = await this.policy(projectId, policyId);
    if (input.name !== undefined) checkName(input.name);
    checkTimeZone(input.timeZone);
    const tags = checkTags(input.tags);
    const s = input.scheduled;
    const scheduled = s ? this.scheduled(policy.scheduled, s) : policy.scheduled;
    const now = this.now();
    const enabled = s?.status !== undefined ? s.status === 'ON' : policy.enabled;
    const timeZone = input.timeZone ?? policy.timeZone;
    // A new schedule, or a policy switched on, starts counting at this moment: slots before it never run.
    const restart = (!policy.enabled && enabled) || (s !== undefined && JSON.stringify(scheduled) !== JSON.stringify(policy.scheduled)) || timeZone !== policy.timeZone;
    const updated = await this.deps.policies
      .update(projectId, policyId, {
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(scheduled ? { scheduled } : {}),
        enabled,
        timeZone,
        ...(input.timeZone !== undefined ? { timeZoneGiven: true } : {}),
        ...(tags ? { tags } : {}),
        ...(restart ? { checkedUntil: now.toISOString(), anchorDate: localDate(now, timeZone) } : {}),
        updatedAt: now.toISOString(),
      })
      .catch(rethrowNotFound(policyId));
    return { policy: updated, resourceCount: (await this.deps.policies.members(projectId, policyId)).length };
  }

  async list(projectId: string): Promise<PolicyView[]> {
    checkProjectId(projectId);
    const policies = await policiesOfKind(this.deps.policies, 'vbs', projectId);
    return Promise.all(policies.map(async (policy) => ({ policy, resourceCount: (await this.deps.policies.members(projectId, policy.policyId)).length })));
  }

  /** Deletes the policy and its memberships; the backups it made stay (and are no longer pruned). */
  async delete(projectId: string, policyId: string): Promise<void> {
    await this.policy(projectId, policyId);
    await this.deps.policies.delete(projectId, policyId);
  }

  async associate(projectId: string, policyId: string, resources: Array<{ resourceId: string; resourceType: string }>): Promise<{ success: ResourceOutcome[]; fail: ResourceOutcome[] }> {
    await this.policy(projectId, policyId);
    const success: ResourceOutcome[] = [];
    const fail: ResourceOutcome[] = [];
    const refuse = (r: { resourceId: string; resourceType: string }, errorCode: string, errorMessage: string) => fail.push({ resourceId: r.resourceId, resourceType: r.resourceType, errorCode, errorMessage });
    for (const r of resources) {
      if (r.resourceType !== 'volume') {
        refuse(r, 'OpenVBS.1802', `resource_type "${r.resourceType}" is not supported; VBS policies hold volumes`);
        continue;
      }
      const volume = isId(r.resourceId) ? await this.deps.volumes.get(projectId, r.resourceId) : undefined;
      if (!volume) {
        refuse(r, 'OpenVBS.0404', `volume ${r.resourceId} not found`);
        continue;
      }
      if (volume.status === 'error') {
        refuse(r, 'VolumeBackup.0202', `volume ${r.resourceId} is in error`);
        continue;
      }
      const previous = await this.deps.policies.policyOf(projectId, r.resourceId);
      try {
        await this.deps.policies.join(projectId, policyId, r.resourceId, 'volume');
      } catch (err) {
        if (err instanceof PolicyNotFoundError) throw policyNotFound(policyId);
        throw err;
      }
      // Moved from another policy: the backups that one made stay, no longer pruned by it.
      if (previous && previous !== policyId) await this.deps.policies.forgetResource(projectId, previous, r.resourceId);
      success.push({ resourceId: r.resourceId, resourceType: 'volume', availabilityZone: this.deps.availabilityZone ?? 'local' });
    }
    return { success, fail };
  }

  async disassociate(projectId: string, policyId: string, resourceIds: string[]): Promise<{ success: ResourceOutcome[]; fail: ResourceOutcome[] }> {
    await this.policy(projectId, policyId);
    const success: ResourceOutcome[] = [];
    const fail: ResourceOutcome[] = [];
    for (const resourceId of resourceIds) {
      if (isId(resourceId) && (await this.deps.policies.leave(projectId, policyId, resourceId))) success.push({ resourceId, resourceType: 'volume' });
      else fail.push({ resourceId, resourceType: 'volume', errorCode: 'OpenVBS.1803', errorMessage: `volume ${resourceId} is not in backup policy ${policyId}` });
    }
    return { success, fail };
  }

  /** Runs the policy now over its volumes; AutoBackup.0225 while a run of it is still going. */
  async execute(projectId: string, policyId: string): Promise<void> {
    const policy = await this.policy(projectId, policyId);
    await this.deps.runner.settle({ projectId, policyId });
    if ((await this.deps.policies.openTasks({ projectId, policyId })).length) {
      throw conflict('AutoBackup.0225', `backup policy ${policyId} is running; try again when its run has ended`);
    }
    const now = this.now();
    await this.deps.policies.claimSlot(projectId, policyId, `manual-${now.toISOString()}`, 'manual', now.toISOString());
    await this.deps.runner.run(policy, now, { late: false, trigger: 'manual' });
  }

  /** The tasks of the policy's runs of the last TASK_RETENTION_DAYS days, filtered and paged, and how many match. */
  async tasks(projectId: string, policyId: string, query: TasksQuery = {}): Promise<{ count: number; tasks: PolicyTask[] }> {
    await this.policy(projectId, policyId);
    await this.deps.runner.settle({ projectId, policyId });
    const since = new Date(this.now().getTime() - TASK_RETENTION_DAYS * 24 * 3600 * 1000).toISOString();
    let tasks = await this.deps.policies.tasks(projectId, policyId, since);
    if (query.status !== undefined) tasks = tasks.filter((t) => t.status === query.status);
    if (query.jobId !== undefined) tasks = tasks.filter((t) => t.taskId === query.jobId);
    if (query.sortDir !== 'asc') tasks.reverse();
    const count = tasks.length;
    let start = query.offset ?? 0;
    if (query.marker !== undefined) {
      const at = tasks.findIndex((t) => t.taskId === query.marker);
      if (at < 0) throw notFound(`marker ${query.marker} not found`);
      start = at + 1;
    }
    return { count, tasks: tasks.slice(start, start + Math.min(query.limit ?? 1000, 1000)) };
  }

  // ---- tags (the shared rules of ./resource-tags.ts) ----

  async tags(projectId: string, policyId: string): Promise<BackupTag[]> {
    return this.tagging.tags(projectId, policyId);
  }

  /** Adds tags, or sets the value of keys the policy has already. */
  async putTags(projectId: string, policyId: string, tags: BackupTag[]): Promise<void> {
    return this.tagging.putTags(projectId, policyId, tags);
  }

  /** Removes tags by key (and value, when one is given); a key the policy lacks: 404 in the single form. */
  async deleteTags(projectId: string, policyId: string, tags: Array<{ key: string; value?: string }>, options: { strict: boolean }): Promise<void> {
    return this.tagging.deleteTags(projectId, policyId, tags, options);
  }

  /** Every tag key of the project's policies with the values it has. */
  async projectTags(projectId: string): Promise<Array<{ key: string; values: string[] }>> {
    return this.tagging.projectTags(projectId);
  }

  /** The project's policies the filter selects (paged), and how many it selects. */
  async filterByTags(projectId: string, filter: TagFilter): Promise<{ total: number; policies: PolicyRecord[] }> {
    const { total, items } = await this.tagging.filter(projectId, filter);
    return { total, policies: items };
  }

  /** The runner (the tick of the whole service reads it). */
  get runner(): PolicyRunner {
    return this.deps.runner;
  }

  /** One tick over this project's policies, at `at` (default: the clock's now). */
  async tick(projectId: string, at?: Date): Promise<TickReport> {
    checkProjectId(projectId);
    const clock = at ? { now: () => at } : this.deps.clock;
    return runTick({ policies: this.deps.policies, runner: this.deps.runner.withClock(clock), clock }, { projectId });
  }

  /** One tick over every project's policies (the periodic rule, the local runtime's timer). */
  async tickAll(): Promise<TickReport> {
    return runTick({ policies: this.deps.policies, runner: this.deps.runner, clock: this.deps.clock });
  }
}

/** Volume backups as a policy run makes and prunes them: through the backup service, like a user's. */
export function volumeBackups(backups: BackupService, stores: Pick<CatalogStores, 'backups' | 'shares'>): ResourceBackups {
  return {
    start: async (projectId, volumeId, req) => backups.create(projectId, { volumeId, name: req.name, tags: req.tags }),
    status: async (projectId, backupId) => (await stores.backups.getBackup(projectId, backupId))?.status,
    delete: async (projectId, backupId) => {
      await backups.delete(projectId, backupId);
    },
    isShared: async (projectId, backupId) => (await stores.shares.listShared(projectId, backupId)).length > 0,
  };
}

/** The policy runner and the VBS policy service over the catalog stores and the backup service. */
export function createPolicyService(deps: { stores: CatalogStores; backups: BackupService; clock?: Clock; availabilityZone?: string; resources?: Partial<Record<ResourceType, ResourceBackups>>; notifier?: Notifier }): PolicyService {
  const clock = deps.clock ?? systemClock;
  const runner = new PolicyRunner({
    policies: deps.stores.policies,
    jobs: deps.stores.jobs,
    // Other kinds' backups (CSBS: servers) come from their services; the runner and the tick are shared.
    resources: { volume: volumeBackups(deps.backups, deps.stores), ...deps.resources },
    clock,
    retentionOf,
    ...(deps.notifier ? { notifier: deps.notifier } : {}),
  });
  return new PolicyService({
    policies: deps.stores.policies,
    volumes: deps.stores.volumes,
    runner,
    clock,
    ...(deps.availabilityZone ? { availabilityZone: deps.availabilityZone } : {}),
  });
}

// CSBS backup policies: create, list, show, update, delete; execute now. A policy holds servers
// (OS::Nova::Server) and one or more scheduled operations, each an iCalendar RRULE trigger with its retention.
// The runs and retention are the shared ones of lib/policies/ (runner, tick); a run protects each server
// through the server backup service (./server-backups.ts) as `autobk_…` with the policy's tags and
// auto_trigger true, and retention deletes only the checkpoints the policy made, through the same service.
//
// Choices (documented in docs/service-contract.md):
// - A server is in at most one policy. Naming a server that another policy holds is refused (409 OpenVBS.1804),
//   as CSBS does; remove it from the other policy first. Removing a server from a policy keeps the backups
//   that policy made of it, for good.
// - RRULE times are UTC (as CSBS reads them); an operation's `timezone` is the zone of its generations.
// - Retention: `permanent` wins, then the generations (day/week/month/year_backups), then `max_backups`, then
//   `retention_duration_days` (see retentionOf in ../policies/tick.ts); -1 or 0 counts as not given. The first
//   scheduled operation's retention applies to the policy's backups.
// - Status: `enabled` when an operation is enabled, `disabled` when none is, `suspended` when the policy was
//   suspended as a whole (PUT `status: "suspended"`, an OpenVBS extension; `enabled` resumes it). A policy
//   enabled again, or whose operations change, starts counting slots at that moment (missed ones never run).
import { randomUUID } from 'node:crypto';
import type { CheckpointRecord, CheckpointStore } from '../catalog/checkpoints.ts';
import type { CsbsOperation, PolicyRecord, PolicyStore } from '../catalog/policies.ts';
import type { CatalogStores } from '../catalog/stores.ts';
import { ServerNotFoundError } from '../engine/ports.ts';
import type { VolumeProvider } from '../engine/ports.ts';
import type { PolicyRunner, ResourceBackups } from '../policies/runner.ts';
import { localDate, rruleRefusal, zoneOf } from '../policies/schedule.ts';
import type { Clock } from '../util/clock.ts';
import { distinctTags, validateTags } from './backup-rules.ts';
import type { BackupTag } from './backup-rules.ts';
import { badRequest, conflict, notFound, serverNotFound } from './errors.ts';
import { checkProjectId, isId, newBackupId } from './ids.ts';
import { policiesOfKind, policyOfKind, policyTagging, rethrowNotFound } from './policy-records.ts';
import type { ResourceTags } from './resource-tags.ts';
import { CSBS_PROVIDER_ID, SERVER_RESOURCE_TYPE } from './server-backups.ts';
import type { ServerBackupService } from './server-backups.ts';
import { charLength, checkText } from './validation.ts';

export const CSBS_POLICY_NAME_MAX = 255;
export const CSBS_DESCRIPTION_MAX = 255;
/** Servers one policy may hold (reference: csbs-api.md). */
export const POLICY_SERVERS_MAX = 64;
export const OPERATIONS_MAX = 5;
export const MAX_BACKUPS_RANGE = [1, 99999] as const;
export const RETENTION_DAYS_RANGE = [1, 99999] as const;
export const GENERATIONS_RANGE = [0, 100] as const;
export const PATTERN_MAX = 10240;

export type CsbsPolicyStatus = 'enabled' | 'disabled' | 'suspended';

const invalid = (message: string) => badRequest('OpenVBS.1801', message);

/** A scheduled operation as the API receives it (numbers already numbers; every field optional on update). */
export interface CsbsOperationInput {
  id?: string;
  name?: string;
  description?: string;
  enabled?: boolean;
  operationType?: string;
  pattern?: string;
  maxBackups?: number;
  retentionDurationDays?: number;
  permanent?: boolean;
  dayBackups?: number;
  weekBackups?: number;
  monthBackups?: number;
  yearBackups?: number;
  /** `UTC+08:00`, an IANA name, or whole hours east of UTC. */
  timezone?: string | number;
}

export interface CsbsPolicyInput {
  name?: string;
  description?: string;
  providerId?: string;
  resources?: Array<{ id: string; type: string; name?: string }>;
  operations?: CsbsOperationInput[];
  tags?: BackupTag[];
  /** OpenVBS: `suspended` pauses the whole policy, `enabled` resumes it (`disabled` is the operations' doing). */
  status?: CsbsPolicyStatus;
}

export interface CsbsPolicyView {
  policy: PolicyRecord;
  status: CsbsPolicyStatus;
  resources: Array<{ id: string; name: string }>;
}

export interface CsbsPolicyListQuery {
  name?: string;
  status?: CsbsPolicyStatus;
  sort?: string;
  limit?: number;
  offset?: number;
  marker?: string;
}

export interface CsbsPolicyServiceDeps {
  policies: PolicyStore;
  checkpoints: CheckpointStore;
  provider: Pick<VolumeProvider, 'describeServer' | 'listServers'>;
  runner: PolicyRunner;
  clock: Clock;
}

function checkCount(value: number | undefined, what: string, [min, max]: readonly [number, number], allowUnset = false): void {
  if (value === undefined) return;
  if (allowUnset && (value === -1 || value === 0)) return;
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${what} must be an integer from ${min} to ${max}${allowUnset ? ' (or -1: not set)' : ''}`);
}

function checkName(name: string, what: string): void {
  const length = charLength(name);
  if (length < 1 || length > CSBS_POLICY_NAME_MAX) throw invalid(`${what} must be 1-${CSBS_POLICY_NAME_MAX} characters`);
  if (!/^[\p{L}\p{N}_-]+$/u.test(name)) throw invalid(`${what} may contain only letters, digits, underscores and hyphens`);
}

function checkDescription(description: string | undefined, what: string): void {
  checkText(description, 'OpenVBS.1801', { what, max: CSBS_DESCRIPTION_MAX, noAngleBrackets: true });
}

/** The zone an operation names, as the policy stores it (`UTC+08:00` for 8, `UTC-03:30` for -3.5). */
export function operationZone(timezone: string | number): string {
  if (typeof timezone === 'number') {
    if (!Number.isFinite(timezone) || timezone < -12 || timezone > 14 || (timezone * 60) % 15 !== 0) throw invalid(`timezone ${timezone} is not an offset of -12 to 14 hours`);
    const minutes = Math.abs(Math.round(timezone * 60));
    return `UTC${timezone < 0 ? '-' : '+'}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  }
  if (!zoneOf(timezone)) throw invalid(`timezone "${timezone}" is not UTC±HH:MM (such as UTC+08:00) or a known zone name`);
  return timezone;
}

const hasGenerations = (op: Pick<CsbsOperation, 'dayBackups' | 'weekBackups' | 'monthBackups' | 'yearBackups'>) =>
  [op.dayBackups, op.weekBackups, op.monthBackups, op.yearBackups].some((n) => n !== undefined && n > 0);

/** `input` over `current` (a new operation when there is none), checked as a whole. */
function mergeOperation(current: CsbsOperation | undefined, input: CsbsOperationInput, index: number): CsbsOperation {
  const what = `scheduled_operations[${index}]`;
  if (input.operationType !== undefined && input.operationType !== 'backup') throw invalid(`${what}.operation_type must be "backup"`);
  if (input.name !== undefined) checkName(input.name, `${what}.name`);
  checkDescription(input.description, `${what}.description`);
  const pattern = input.pattern ?? current?.pattern;
  if (pattern === undefined) throw invalid(`${what}.trigger.properties.pattern is required`);
  if (charLength(pattern) > PATTERN_MAX) throw invalid(`${what}.trigger.properties.pattern is longer than ${PATTERN_MAX} characters`);
  const refusal = rruleRefusal(pattern);
  if (refusal) throw invalid(`${what}.trigger.properties.pattern: ${refusal}`);
  checkCount(input.maxBackups, `${what}.operation_definition.max_backups`, MAX_BACKUPS_RANGE, true);
  checkCount(input.retentionDurationDays, `${what}.operation_definition.retention_duration_days`, RETENTION_DAYS_RANGE, true);
  for (const [value, name] of [
    [input.dayBackups, 'day_backups'],
    [input.weekBackups, 'week_backups'],
    [input.monthBackups, 'month_backups'],
    [input.yearBackups, 'year_backups'],
  ] as const) {
    checkCount(value, `${what}.operation_definition.${name}`, GENERATIONS_RANGE);
  }
  const timezone = input.timezone !== undefined ? operationZone(input.timezone) : current?.timezone;
  const pick = <T>(given: T | undefined, had: T | undefined) => (given !== undefined ? given : had);
  const op: CsbsOperation = {
    id: current?.id ?? randomUUID(),
    name: input.name ?? current?.name ?? `operation-${index + 1}`,
    enabled: input.enabled ?? current?.enabled ?? true,
    pattern,
  };
  const description = pick(input.description, current?.description);
  if (description !== undefined) op.description = description;
  const fields = {
    maxBackups: pick(input.maxBackups, current?.maxBackups),
    retentionDurationDays: pick(input.retentionDurationDays, current?.retentionDurationDays),
    permanent: pick(input.permanent, current?.permanent),
    dayBackups: pick(input.dayBackups, current?.dayBackups),
    weekBackups: pick(input.weekBackups, current?.weekBackups),
    monthBackups: pick(input.monthBackups, current?.monthBackups),
    yearBackups: pick(input.yearBackups, current?.yearBackups),
    timezone,
  };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) (op as unknown as Record<string, unknown>)[key] = value;
  const counted = (n: number | undefined) => n !== undefined && n > 0;
  if (!op.permanent && !hasGenerations(op) && !counted(op.maxBackups) && !counted(op.retentionDurationDays)) {
    throw invalid(`${what}.operation_definition needs max_backups, retention_duration_days, day/week/month/year_backups or permanent`);
  }
  if (hasGenerations(op) && op.timezone === undefined) throw invalid(`${what}.operation_definition.timezone is required with day/week/month/year_backups`);
  return op;
}


export class CsbsPolicyService {
  private readonly deps: CsbsPolicyServiceDeps;
  /** The policy tag routes (/csbs_backup_policy/…/tags), by the VBS policy tags' rules. */
  readonly tagging: ResourceTags<PolicyRecord>;

  constructor(deps: CsbsPolicyServiceDeps) {
    this.deps = deps;
    this.tagging = policyTagging(deps.policies, 'csbs', deps.clock);
  }

  private now(): Date {
    return this.deps.clock.now();
  }

  async policy(projectId: string, policyId: string): Promise<PolicyRecord> {
    return policyOfKind(this.deps.policies, 'csbs', projectId, policyId);
  }

  async show(projectId: string, policyId: string): Promise<CsbsPolicyView> {
    return this.view(await this.policy(projectId, policyId));
  }

  private async view(policy: PolicyRecord, names?: Map<string, string>): Promise<CsbsPolicyView> {
    const members = await this.deps.policies.members(policy.projectId, policy.policyId);
    const known = names ?? (members.length ? await this.serverNames(policy.projectId) : new Map<string, string>());
    const anyEnabled = (policy.operations ?? []).some((o) => o.enabled);
    return {
      policy,
      status: !policy.enabled ? 'suspended' : anyEnabled ? 'enabled' : 'disabled',
      resources: members.map((m) => ({ id: m.resourceId, name: known.get(m.resourceId) ?? '' })),
    };
  }

  private async serverNames(projectId: string): Promise<Map<string, string>> {
    return new Map((await this.deps.provider.listServers(projectId)).map((s) => [s.serverId, s.name]));
  }

  /** The servers named, checked: the right type, each once, existing, at most POLICY_SERVERS_MAX, not in another policy. */
  private async checkResources(projectId: string, policyId: string | undefined, resources: NonNullable<CsbsPolicyInput['resources']>): Promise<string[]> {
    if (resources.length > POLICY_SERVERS_MAX) throw invalid(`a policy holds at most ${POLICY_SERVERS_MAX} servers`);
    const ids: string[] = [];
    for (const r of resources) {
      if (r.type !== SERVER_RESOURCE_TYPE) throw invalid(`resources: type "${r.type}" is not supported; CSBS policies hold ${SERVER_RESOURCE_TYPE}`);
      if (ids.includes(r.id)) throw invalid(`resources: server ${r.id} is named twice`);
      if (!isId(r.id)) throw serverNotFound(r.id);
      try {
        await this.deps.provider.describeServer(projectId, r.id);
      } catch (err) {
        if (err instanceof ServerNotFoundError) throw serverNotFound(r.id);
        throw err;
      }
      const holder = await this.deps.policies.policyOf(projectId, r.id);
      if (holder !== undefined && holder !== policyId) throw conflict('OpenVBS.1804', `server ${r.id} is already in backup policy ${holder}; a server belongs to at most one policy (remove it there first)`);
      ids.push(r.id);
    }
    return ids;
  }

  private checkCommon(input: CsbsPolicyInput): BackupTag[] | undefined {
    if (input.name !== undefined) checkName(input.name, 'name');
    checkDescription(input.description, 'description');
    if (input.providerId !== undefined && input.providerId !== CSBS_PROVIDER_ID) throw invalid(`provider_id must be ${CSBS_PROVIDER_ID}`);
    if (input.operations !== undefined && input.operations.length > OPERATIONS_MAX) throw invalid(`a policy has at most ${OPERATIONS_MAX} scheduled operations`);
    if (input.status === 'disabled') throw invalid('status "disabled" follows from the scheduled operations (set their enabled to false); a policy may be set "suspended" or "enabled"');
    if (input.tags === undefined) return undefined;
    validateTags(input.tags);
    return distinctTags(input.tags);
  }

  async create(projectId: string, input: CsbsPolicyInput): Promise<CsbsPolicyView> {
    checkProjectId(projectId);
    if (input.name === undefined) throw invalid('name is required');
    if (!input.operations?.length) throw invalid('scheduled_operations must hold at least one operation');
    const tags = this.checkCommon(input) ?? [];
    const operations = input.operations.map((op, i) => {
      if (op.id !== undefined) throw invalid(`scheduled_operations[${i}].id is given by the service`);
      return mergeOperation(undefined, op, i);
    });
    const serverIds = await this.checkResources(projectId, undefined, input.resources ?? []);
    const now = this.now();
    const policy: PolicyRecord = {
      projectId,
      policyId: newBackupId(),
      kind: 'csbs',
      name: input.name,
      ...(input.description !== undefined ? { description: input.description } : {}),
      enabled: input.status !== 'suspended',
      operations,
      timeZone: 'UTC',
      tags,
      anchorDate: localDate(now, 'UTC'),
      checkedUntil: now.toISOString(),
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    await this.deps.policies.create(policy);
    try {
      await this.join(projectId, policy.policyId, serverIds);
    } catch (err) {
      // A server taken by another policy between the check and the join: nothing of this policy stays.
      await this.deps.policies.delete(projectId, policy.policyId);
      throw err;
    }
    return this.view(policy);
  }

  /** Joins the servers; one another policy took meanwhile is refused (and left where it is). */
  private async join(projectId: string, policyId: string, serverIds: string[]): Promise<void> {
    for (const serverId of serverIds) {
      const holder = await this.deps.policies.policyOf(projectId, serverId);
      if (holder === policyId) continue;
      if (holder !== undefined) throw conflict('OpenVBS.1804', `server ${serverId} is already in backup policy ${holder}; a server belongs to at most one policy (remove it there first)`);
      await this.deps.policies.join(projectId, policyId, serverId, 'server').catch(rethrowNotFound(policyId));
    }
  }

  async update(projectId: string, policyId: string, input: CsbsPolicyInput): Promise<CsbsPolicyView> {
    const policy = await this.policy(projectId, policyId);
    const tags = this.checkCommon(input);
    let operations = policy.operations ?? [];
    if (input.operations !== undefined) {
      const next = [...operations];
      for (const [i, op] of input.operations.entries()) {
        const at = op.id !== undefined ? next.findIndex((o) => o.id === op.id) : -1;
        if (op.id !== undefined && at < 0) throw invalid(`scheduled_operations[${i}]: policy ${policyId} has no operation ${op.id}`);
        if (at >= 0) next[at] = mergeOperation(next[at], op, i);
        else next.push(mergeOperation(undefined, op, next.length));
      }
      if (next.length > OPERATIONS_MAX) throw invalid(`a policy has at most ${OPERATIONS_MAX} scheduled operations`);
      operations = next;
    }
    const serverIds = input.resources !== undefined ? await this.checkResources(projectId, policyId, input.resources) : undefined;
    const now = this.now();
    const enabled = input.status !== undefined ? input.status !== 'suspended' : policy.enabled;
    // A policy resumed, or with other triggers, starts counting at this moment: slots before it never run.
    const triggers = (ops: CsbsOperation[]) => JSON.stringify(ops.map((o) => [o.id, o.enabled, o.pattern]));
    const restart = (!policy.enabled && enabled) || triggers(operations) !== triggers(policy.operations ?? []);
    const updated = await this.deps.policies
      .update(projectId, policyId, {
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(tags ? { tags } : {}),
        operations,
        enabled,
        ...(restart ? { checkedUntil: now.toISOString(), anchorDate: localDate(now, policy.timeZone) } : {}),
        updatedAt: now.toISOString(),
      })
      .catch(rethrowNotFound(policyId));
    if (serverIds) {
      for (const m of await this.deps.policies.members(projectId, policyId)) {
        // Out of the policy: the backups it made of the server stay, no longer pruned.
        if (!serverIds.includes(m.resourceId)) await this.deps.policies.leave(projectId, policyId, m.resourceId);
      }
      await this.join(projectId, policyId, serverIds);
    }
    return this.view(updated);
  }

  /** The project's CSBS policies matching the query, a page of them, and whether more follow. */
  async list(projectId: string, query: CsbsPolicyListQuery = {}): Promise<{ policies: CsbsPolicyView[]; more: boolean }> {
    checkProjectId(projectId);
    const names = await this.serverNames(projectId);
    let views = await Promise.all((await policiesOfKind(this.deps.policies, 'csbs', projectId)).map((p) => this.view(p, names)));
    if (query.name !== undefined) views = views.filter((v) => v.policy.name === query.name);
    if (query.status !== undefined) views = views.filter((v) => v.status === query.status);
    const [key = 'created_at', dir = 'desc'] = (query.sort ?? 'created_at:desc').split(':');
    const field = key === 'name' ? 'name' : 'createdAt';
    views.sort((a, b) => (a.policy[field] < b.policy[field] ? -1 : a.policy[field] > b.policy[field] ? 1 : a.policy.policyId < b.policy.policyId ? -1 : 1) * (dir === 'asc' ? 1 : -1));
    let start = query.offset ?? 0;
    if (query.marker !== undefined) {
      const at = views.findIndex((v) => v.policy.policyId === query.marker);
      if (at < 0) throw notFound(`marker ${query.marker} not found`);
      start = at + 1;
    }
    const limit = query.limit ?? 1000;
    return { policies: views.slice(start, start + limit), more: start + limit < views.length };
  }

  /** Deletes the policy and its memberships; the checkpoints it made stay (and are no longer pruned). */
  async delete(projectId: string, policyId: string): Promise<void> {
    await this.policy(projectId, policyId);
    await this.deps.policies.delete(projectId, policyId);
  }

  /**
   * Runs the policy now (CSBS "execute policy now"): a server backup of each of its servers, or of those of
   * `serverIds`. AutoBackup.0225 while a run of it is still going; 409 OpenVBS.1805 when no backup could start.
   */
  async execute(projectId: string, policyId: string, serverIds?: string[]): Promise<{ policy: PolicyRecord; checkpoints: CheckpointRecord[] }> {
    const policy = await this.policy(projectId, policyId);
    const members = (await this.deps.policies.members(projectId, policyId)).map((m) => m.resourceId);
    for (const id of serverIds ?? []) if (!members.includes(id)) throw invalid(`server ${id} is not in backup policy ${policyId}`);
    if (!members.length) throw invalid(`backup policy ${policyId} holds no servers`);
    await this.deps.runner.settle({ projectId, policyId });
    if ((await this.deps.policies.openTasks({ projectId, policyId })).length) {
      throw conflict('AutoBackup.0225', `backup policy ${policyId} is running; try again when its run has ended`);
    }
    const now = this.now();
    await this.deps.policies.claimSlot(projectId, policyId, `manual-${now.toISOString()}`, 'manual', now.toISOString());
    const run = await this.deps.runner.run(policy, now, { late: false, trigger: 'manual', ...(serverIds?.length ? { only: serverIds } : {}) });
    const checkpoints: CheckpointRecord[] = [];
    for (const task of run.tasks) {
      const checkpoint = task.backupId ? await this.deps.checkpoints.get(projectId, task.backupId) : undefined;
      if (checkpoint) checkpoints.push(checkpoint);
    }
    if (!checkpoints.length) throw conflict('OpenVBS.1805', `no server of backup policy ${policyId} could be backed up: ${run.tasks.map((t) => `${t.resourceId}: ${t.reason ?? t.status}`).join('; ')}`);
    return { policy, checkpoints };
  }
}


/** Server backups as a policy run makes and prunes them: through the server backup service, like a user's. */
export function serverBackupsForPolicies(serverBackups: ServerBackupService, stores: Pick<CatalogStores, 'checkpoints'>): ResourceBackups {
  return {
    start: async (projectId, serverId, req) => {
      const checkpoint = await serverBackups.protect(projectId, serverId, { name: req.name, tags: req.tags, autoTrigger: true, policyId: req.policyId });
      return { jobId: checkpoint.jobId, backupId: checkpoint.checkpointId };
    },
    status: async (projectId, checkpointId) => (await stores.checkpoints.get(projectId, checkpointId))?.status,
    delete: async (projectId, checkpointId) => {
      await serverBackups.delete(projectId, checkpointId);
    },
  };
}

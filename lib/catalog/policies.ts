// Backup policies over the table port (table design in tables.ts): the policy, which resources (volumes, or
// servers for CSBS) it holds, the (policy, slot) claims that make each slot fire once, the tasks of its runs
// (kept TASK_RETENTION_DAYS) and the backups it made (what retention may delete).
//
//   policy       pk "P#<project>"  sk "POLICY#<policyId>"
//                gsi1pk "POLICIES"  gsi1sk "<project>#<policyId>"   (every policy of every project: the tick's one Query)
//   membership   pk "P#<project>"  sk "POLRES#<resourceId>"  { policyId, resourceType }
//                gsi1pk "POLRES#<project>#<policyId>"  gsi1sk "<resourceId>"
//                Keyed by the resource, so a resource is in at most one policy: associating it elsewhere
//                overwrites the item (moves it).
//   slot claim   pk "P#<project>"  sk "POLRUN#<policyId>#<slot ISO>"  { outcome: run | missed | manual }
//                Written with notExists: the tick that writes it runs the slot; every other tick sees it taken.
//   task         pk "P#<project>"  sk "POLTASK#<policyId>#<createdAt ISO>#<taskId>"
//                while WAITING or RUNNING: gsi1pk "POLTASKS#OPEN"  gsi1sk "<project>#<policyId>#<taskId>"
//   made backup  pk "P#<project>"  sk "POLBK#<policyId>#<resourceId>#<slot ISO>#<backupId>"
//                Only backups listed here are ever pruned by the policy: manual backups never are.
import type { BackupTag } from '../service/backup-rules.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Item, Table } from './table.ts';
import { CATALOG_GSI1, fromItem, projectKey } from './tables.ts';

export const TASK_RETENTION_DAYS = 30;

export type PolicyKind = 'vbs' | 'csbs';
export type ResourceType = 'volume' | 'server';

/** A VBS `scheduled_policy` as given (both members of a pair may be set; precedence is applied when it runs). */
export interface VbsScheduledPolicy {
  startTimes: string[];
  frequency?: number;
  weekFrequency?: string[];
  retentionNum?: number;
  retentionDay?: number;
  remainFirstBackupOfCurMonth: boolean;
}

/** A CSBS scheduled operation (trigger RRULE plus its retention). */
export interface CsbsOperation {
  id: string;
  name: string;
  description?: string;
  enabled: boolean;
  pattern: string;
  maxBackups?: number;
  retentionDurationDays?: number;
  permanent?: boolean;
  dayBackups?: number;
  weekBackups?: number;
  monthBackups?: number;
  yearBackups?: number;
  /** The generations' time zone (IANA or UTC±HH:MM). */
  timezone?: string;
}

export interface PolicyRecord {
  projectId: string;
  policyId: string;
  kind: PolicyKind;
  name: string;
  description?: string;
  enabled: boolean;
  /** VBS policies. */
  scheduled?: VbsScheduledPolicy;
  /** CSBS policies. */
  operations?: CsbsOperation[];
  /** The schedule's zone (`UTC+08:00`, an IANA name, or `UTC`). */
  timeZone: string;
  /** Whether `time_zone` was given (echoed back only then). */
  timeZoneGiven?: boolean;
  tags: BackupTag[];
  /** Day 0 of `frequency` (and of RRULE intervals), in the policy's zone. */
  anchorDate: string;
  /** The tick has considered every slot up to here. */
  checkedUntil: string;
  createdAt: string;
  updatedAt: string;
}

export type TaskStatus = 'WAITING' | 'RUNNING' | 'EXECUTE_SUCCESS' | 'EXECUTE_FAIL' | 'EXECUTE_TIMEOUT' | 'SKIP';
export const OPEN_TASK_STATUSES: readonly TaskStatus[] = ['WAITING', 'RUNNING'];

/** One resource's part of one policy run. */
export interface PolicyTask {
  projectId: string;
  policyId: string;
  taskId: string;
  resourceId: string;
  resourceType: ResourceType;
  status: TaskStatus;
  /** The slot the run stands for (execute-now: the moment it was asked). */
  scheduledAt: string;
  /** Ran well after its slot, or stands for slots missed while the tick was down. */
  late: boolean;
  trigger: 'schedule' | 'manual';
  backupName: string;
  createdAt: string;
  finishedAt?: string;
  /** The backup job (VBS) or server backup job (CSBS). */
  jobId?: string;
  backupId?: string;
  /** Why the task was skipped or failed. */
  reason?: string;
}

export interface PolicyBackupRef {
  policyId: string;
  resourceId: string;
  /** The slot the backup was made for: retention counts and ages by it. */
  slot: string;
  backupId: string;
}

export interface PolicyStore {
  create(record: PolicyRecord): Promise<void>;
  get(projectId: string, policyId: string): Promise<PolicyRecord | undefined>;
  list(projectId: string): Promise<PolicyRecord[]>;
  /** Every policy of every project (the tick). */
  listAll(): Promise<PolicyRecord[]>;
  /** Applies `patch` to an existing policy (PolicyNotFoundError otherwise). */
  update(projectId: string, policyId: string, patch: Partial<Omit<PolicyRecord, 'projectId' | 'policyId' | 'kind'>>): Promise<PolicyRecord>;
  /** Deletes the policy, its memberships and its list of made backups (the backups themselves stay). */
  delete(projectId: string, policyId: string): Promise<void>;

  /** The policy the resource is in. */
  policyOf(projectId: string, resourceId: string): Promise<string | undefined>;
  /** Puts the resource in the policy (moving it from any other); PolicyNotFoundError when the policy is gone. */
  join(projectId: string, policyId: string, resourceId: string, resourceType: ResourceType): Promise<void>;
  /** Takes the resource out of the policy; false when it was not in it. */
  leave(projectId: string, policyId: string, resourceId: string): Promise<boolean>;
  members(projectId: string, policyId: string): Promise<Array<{ resourceId: string; resourceType: ResourceType }>>;

  /** Claims (policy, slot); true for the one caller that wrote the claim. */
  claimSlot(projectId: string, policyId: string, slot: string, outcome: 'run' | 'missed' | 'manual', at: string): Promise<boolean>;

  putTask(task: PolicyTask): Promise<void>;
  updateTask(task: PolicyTask, patch: Partial<Pick<PolicyTask, 'status' | 'finishedAt' | 'jobId' | 'backupId' | 'reason'>>): Promise<PolicyTask>;
  /** The policy's tasks created at or after `since`, oldest first. */
  tasks(projectId: string, policyId: string, since: string): Promise<PolicyTask[]>;
  /** WAITING or RUNNING tasks: of one policy, of one project, or of all. */
  openTasks(scope?: { projectId: string; policyId?: string }): Promise<PolicyTask[]>;
  /** Deletes the policy's tasks created before `before`. */
  expireTasks(projectId: string, policyId: string, before: string): Promise<number>;

  recordBackup(projectId: string, ref: PolicyBackupRef): Promise<void>;
  /** The backups the policy made of the resource, oldest slot first. */
  madeBackups(projectId: string, policyId: string, resourceId: string): Promise<PolicyBackupRef[]>;
  forgetBackup(projectId: string, ref: PolicyBackupRef): Promise<void>;
  /** Forgets every backup the policy made of the resource (it left the policy: they are kept for good). */
  forgetResource(projectId: string, policyId: string, resourceId: string): Promise<void>;
}

export class PolicyNotFoundError extends Error {
  override name = 'PolicyNotFoundError';
}

export const ALL_POLICIES_KEY = 'POLICIES';
export const OPEN_POLICY_TASKS_KEY = 'POLTASKS#OPEN';
const policySk = (policyId: string) => `POLICY#${policyId}`;
const memberSk = (resourceId: string) => `POLRES#${resourceId}`;
const membersKey = (projectId: string, policyId: string) => `POLRES#${projectId}#${policyId}`;
const claimSk = (policyId: string, slot: string) => `POLRUN#${policyId}#${slot}`;
const taskPrefix = (policyId: string) => `POLTASK#${policyId}#`;
const taskSk = (t: Pick<PolicyTask, 'policyId' | 'createdAt' | 'taskId'>) => `${taskPrefix(t.policyId)}${t.createdAt}#${t.taskId}`;
const openTaskSk = (t: Pick<PolicyTask, 'projectId' | 'policyId' | 'taskId'>) => `${t.projectId}#${t.policyId}#${t.taskId}`;
const madePrefix = (policyId: string, resourceId?: string) => `POLBK#${policyId}#${resourceId === undefined ? '' : `${resourceId}#`}`;
const madeSk = (ref: PolicyBackupRef) => `${madePrefix(ref.policyId, ref.resourceId)}${ref.slot}#${ref.backupId}`;

export class TablePolicyStore implements PolicyStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  private key(projectId: string, policyId: string) {
    return { pk: projectKey(projectId), sk: policySk(policyId) };
  }

  async create(record: PolicyRecord): Promise<void> {
    await this.table.put(
      {
        ...this.key(record.projectId, record.policyId),
        [CATALOG_GSI1.partitionKey]: ALL_POLICIES_KEY,
        [CATALOG_GSI1.sortKey]: `${record.projectId}#${record.policyId}`,
        ...record,
      },
      cond.notExists(),
    );
  }

  async get(projectId: string, policyId: string): Promise<PolicyRecord | undefined> {
    const item = await this.table.get(this.key(projectId, policyId));
    return item ? fromItem<PolicyRecord>(item) : undefined;
  }

  async list(projectId: string): Promise<PolicyRecord[]> {
    return collect<PolicyRecord>(queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: policySk('') } }));
  }

  async listAll(): Promise<PolicyRecord[]> {
    const out: PolicyRecord[] = [];
    for await (const item of queryAll(this.table, { index: 'gsi1', partition: ALL_POLICIES_KEY })) {
      // The index may lag a delete: read the item itself.
      const record = fromItem<PolicyRecord>(item);
      const current = await this.get(record.projectId, record.policyId);
      if (current) out.push(current);
    }
    return out;
  }

  async update(projectId: string, policyId: string, patch: Partial<Omit<PolicyRecord, 'projectId' | 'policyId' | 'kind'>>): Promise<PolicyRecord> {
    const { projectId: _p, policyId: _i, kind: _k, ...fields } = patch as Partial<PolicyRecord>;
    try {
      return fromItem<PolicyRecord>(await this.table.update(this.key(projectId, policyId), { set: fields }, cond.exists()));
    } catch (err) {
      if (err instanceof ConditionFailedError) throw new PolicyNotFoundError(`policy ${policyId} not found`);
      throw err;
    }
  }

  async delete(projectId: string, policyId: string): Promise<void> {
    for (const m of await this.members(projectId, policyId)) await this.leave(projectId, policyId, m.resourceId);
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: madePrefix(policyId) } })) {
      await this.table.delete({ pk: String(item.pk), sk: String(item.sk) });
    }
    await this.table.delete(this.key(projectId, policyId));
  }

  async policyOf(projectId: string, resourceId: string): Promise<string | undefined> {
    const item = await this.table.get({ pk: projectKey(projectId), sk: memberSk(resourceId) });
    return typeof item?.policyId === 'string' ? item.policyId : undefined;
  }

  async join(projectId: string, policyId: string, resourceId: string, resourceType: ResourceType): Promise<void> {
    try {
      // The policy must still be there when the membership is written (a delete racing the join leaves no orphan).
      await this.table.transact([
        { update: this.key(projectId, policyId), spec: { set: { membersChangedAt: new Date().toISOString() } }, if: cond.exists() },
        {
          put: {
            pk: projectKey(projectId),
            sk: memberSk(resourceId),
            [CATALOG_GSI1.partitionKey]: membersKey(projectId, policyId),
            [CATALOG_GSI1.sortKey]: resourceId,
            projectId,
            policyId,
            resourceId,
            resourceType,
          },
        },
      ]);
    } catch (err) {
      if (err instanceof ConditionFailedError) throw new PolicyNotFoundError(`policy ${policyId} not found`);
      throw err;
    }
  }

  async leave(projectId: string, policyId: string, resourceId: string): Promise<boolean> {
    try {
      await this.table.delete({ pk: projectKey(projectId), sk: memberSk(resourceId) }, cond.eq('policyId', policyId));
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
    await this.forgetResource(projectId, policyId, resourceId);
    return true;
  }

  async members(projectId: string, policyId: string): Promise<Array<{ resourceId: string; resourceType: ResourceType }>> {
    const out: Array<{ resourceId: string; resourceType: ResourceType }> = [];
    for await (const item of queryAll(this.table, { index: 'gsi1', partition: membersKey(projectId, policyId) })) {
      // The index may lag a move: the item keyed by the resource is the truth.
      const resourceId = String(item.resourceId);
      if ((await this.policyOf(projectId, resourceId)) === policyId) out.push({ resourceId, resourceType: item.resourceType as ResourceType });
    }
    return out.sort((a, b) => (a.resourceId < b.resourceId ? -1 : 1));
  }

  async claimSlot(projectId: string, policyId: string, slot: string, outcome: 'run' | 'missed' | 'manual', at: string): Promise<boolean> {
    try {
      await this.table.put({ pk: projectKey(projectId), sk: claimSk(policyId, slot), policyId, slot, outcome, claimedAt: at }, cond.notExists());
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async putTask(task: PolicyTask): Promise<void> {
    const open = OPEN_TASK_STATUSES.includes(task.status);
    await this.table.put(
      {
        pk: projectKey(task.projectId),
        sk: taskSk(task),
        ...(open ? { [CATALOG_GSI1.partitionKey]: OPEN_POLICY_TASKS_KEY, [CATALOG_GSI1.sortKey]: openTaskSk(task) } : {}),
        ...task,
      },
      cond.notExists(),
    );
  }

  async updateTask(task: PolicyTask, patch: Partial<Pick<PolicyTask, 'status' | 'finishedAt' | 'jobId' | 'backupId' | 'reason'>>): Promise<PolicyTask> {
    const closing = patch.status !== undefined && !OPEN_TASK_STATUSES.includes(patch.status);
    const item = await this.table.update(
      { pk: projectKey(task.projectId), sk: taskSk(task) },
      { set: { ...patch }, ...(closing ? { remove: [CATALOG_GSI1.partitionKey, CATALOG_GSI1.sortKey] } : {}) },
      cond.exists(),
    );
    return fromItem<PolicyTask>(item);
  }

  async tasks(projectId: string, policyId: string, since: string): Promise<PolicyTask[]> {
    const prefix = taskPrefix(policyId);
    return collect<PolicyTask>(queryAll(this.table, { partition: projectKey(projectId), sortKey: { between: [`${prefix}${since}`, `${prefix}\uffff`] } }));
  }

  async openTasks(scope?: { projectId: string; policyId?: string }): Promise<PolicyTask[]> {
    const prefix = scope ? `${scope.projectId}#${scope.policyId !== undefined ? `${scope.policyId}#` : ''}` : undefined;
    const out: PolicyTask[] = [];
    for await (const item of queryAll(this.table, { index: 'gsi1', partition: OPEN_POLICY_TASKS_KEY, ...(prefix ? { sortKey: { prefix } } : {}) })) {
      const task = fromItem<PolicyTask>(item);
      // The index may lag the task's end: read the task itself.
      const current = await this.table.get({ pk: projectKey(task.projectId), sk: taskSk(task) });
      if (current && OPEN_TASK_STATUSES.includes(current.status as TaskStatus)) out.push(fromItem<PolicyTask>(current));
    }
    return out;
  }

  async expireTasks(projectId: string, policyId: string, before: string): Promise<number> {
    const prefix = taskPrefix(policyId);
    let n = 0;
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { between: [prefix, `${prefix}${before}`] } })) {
      if (OPEN_TASK_STATUSES.includes(item.status as TaskStatus)) continue;
      await this.table.delete({ pk: String(item.pk), sk: String(item.sk) });
      n++;
    }
    return n;
  }

  async recordBackup(projectId: string, ref: PolicyBackupRef): Promise<void> {
    await this.table.put({ pk: projectKey(projectId), sk: madeSk(ref), ...ref });
  }

  async madeBackups(projectId: string, policyId: string, resourceId: string): Promise<PolicyBackupRef[]> {
    const items = await collect<PolicyBackupRef & Item>(queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: madePrefix(policyId, resourceId) } }));
    return items.map(({ policyId: p, resourceId: r, slot, backupId }) => ({ policyId: p, resourceId: r, slot, backupId }));
  }

  async forgetBackup(projectId: string, ref: PolicyBackupRef): Promise<void> {
    await this.table.delete({ pk: projectKey(projectId), sk: madeSk(ref) });
  }

  async forgetResource(projectId: string, policyId: string, resourceId: string): Promise<void> {
    for (const ref of await this.madeBackups(projectId, policyId, resourceId)) await this.forgetBackup(projectId, ref);
  }
}

async function collect<T>(items: AsyncIterable<Item>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(fromItem<T>(item));
  return out;
}

// Server backups: a CSBS checkpoint with its one checkpoint item (one server), and the VBS backup of each of
// the server's disks it owns. The checkpoint and its disk backups become `available` in one transaction (the
// reason a server has at most MAX_SERVER_DISKS disks), so a client never sees some disks of a server backup
// available and others not.
import type { BackupStatus, GroupSnapshot } from '../engine/ports.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table, WriteOp } from './table.ts';
import { MAX_SERVER_DISKS } from './servers.ts';
import { backupSortKey, checkpointSortKey, fromItem, projectKey } from './tables.ts';

/** CSBS checkpoint item statuses (reference: csbs-api.md). */
export type CheckpointStatus = 'protecting' | 'available' | 'error' | 'restoring' | 'deleting';

/** One disk of a server backup: the VBS backup made of it and the job that made it. */
export interface CheckpointDisk {
  volumeId: string;
  device: string;
  bootable: boolean;
  sizeBytes: number;
  /** The disk's VBS backup (`service_metadata.ST = 1`). */
  backupId: string;
  /** The disk's sub-job of the server backup's job. */
  jobId: string;
  /** The snapshot the disk was read from. */
  snapshotId?: string;
}

export interface CheckpointRecord {
  projectId: string;
  checkpointId: string;
  /** The checkpoint item's id (CSBS lists and shows items; one per checkpoint here). */
  itemId: string;
  serverId: string;
  serverName: string;
  name: string;
  description?: string;
  status: CheckpointStatus;
  /** True unless every disk backup is a full one. */
  incremental: boolean;
  /** Asked for a full backup of every disk (CSBS `incremental: false`). */
  forceFull?: boolean;
  /** The server backup's job; its sub-jobs are the disks'. */
  jobId: string;
  disks: CheckpointDisk[];
  /** How the disks were captured; set by the workflow's first step. */
  snapshot?: Omit<GroupSnapshot, 'disks'>;
  tags: Array<{ key: string; value: string }>;
  autoTrigger: boolean;
  policyId?: string;
  failCode?: string;
  failReason?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
}

/** The checkpoint is missing or not in the status a change needs. */
export class CheckpointStateError extends Error {
  override name = 'CheckpointStateError';
}

export interface CheckpointStore {
  create(record: CheckpointRecord): Promise<void>;
  get(projectId: string, checkpointId: string): Promise<CheckpointRecord | undefined>;
  /** The checkpoint whose item has this id. */
  getByItem(projectId: string, itemId: string): Promise<CheckpointRecord | undefined>;
  list(projectId: string): Promise<CheckpointRecord[]>;
  /** Applies `patch` when the checkpoint is in one of `expect` (any status when absent). */
  update(projectId: string, checkpointId: string, patch: Partial<Omit<CheckpointRecord, 'projectId' | 'checkpointId'>>, expect?: CheckpointStatus[]): Promise<CheckpointRecord>;
  /**
   * In one transaction: the checkpoint goes from `from` to `to` and each of its disk backups from `backupFrom` to
   * `backupTo`. Nothing changes when any of them is not where expected (CheckpointStateError).
   */
  transition(projectId: string, checkpointId: string, change: { from: CheckpointStatus[]; to: CheckpointStatus; backupFrom: BackupStatus[]; backupTo: BackupStatus; patch?: Partial<CheckpointRecord> }): Promise<void>;
  delete(projectId: string, checkpointId: string): Promise<void>;
}

const key = (projectId: string, checkpointId: string) => ({ pk: projectKey(projectId), sk: checkpointSortKey(checkpointId) });

export class TableCheckpointStore implements CheckpointStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async create(record: CheckpointRecord): Promise<void> {
    if (record.disks.length > MAX_SERVER_DISKS) throw new Error(`a server backup has at most ${MAX_SERVER_DISKS} disks`);
    await this.table.put({ ...key(record.projectId, record.checkpointId), ...record }, cond.notExists());
  }

  async get(projectId: string, checkpointId: string): Promise<CheckpointRecord | undefined> {
    const item = await this.table.get(key(projectId, checkpointId));
    return item ? fromItem<CheckpointRecord>(item) : undefined;
  }

  async getByItem(projectId: string, itemId: string): Promise<CheckpointRecord | undefined> {
    return (await this.list(projectId)).find((c) => c.itemId === itemId);
  }

  async list(projectId: string): Promise<CheckpointRecord[]> {
    const out: CheckpointRecord[] = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: checkpointSortKey('') } })) {
      out.push(fromItem<CheckpointRecord>(item));
    }
    return out;
  }

  async update(projectId: string, checkpointId: string, patch: Partial<Omit<CheckpointRecord, 'projectId' | 'checkpointId'>>, expect?: CheckpointStatus[]): Promise<CheckpointRecord> {
    const condition = expect?.length ? cond.and(cond.exists(), cond.in('status', expect)) : cond.exists();
    try {
      return fromItem<CheckpointRecord>(await this.table.update(key(projectId, checkpointId), { set: { ...patch, updatedAt: new Date().toISOString() } }, condition));
    } catch (err) {
      if (err instanceof ConditionFailedError) throw new CheckpointStateError(`server backup ${checkpointId} is missing${expect ? ` or not ${expect.join('/')}` : ''}`);
      throw err;
    }
  }

  async transition(projectId: string, checkpointId: string, change: { from: CheckpointStatus[]; to: CheckpointStatus; backupFrom: BackupStatus[]; backupTo: BackupStatus; patch?: Partial<CheckpointRecord> }): Promise<void> {
    const checkpoint = await this.get(projectId, checkpointId);
    if (!checkpoint) throw new CheckpointStateError(`server backup ${checkpointId} not found`);
    const updatedAt = new Date().toISOString();
    const ops: WriteOp[] = [
      {
        update: key(projectId, checkpointId),
        spec: { set: { ...change.patch, status: change.to, updatedAt } },
        if: cond.in('status', change.from),
      },
      ...checkpoint.disks.map(
        (disk): WriteOp => ({
          update: { pk: projectKey(projectId), sk: backupSortKey(disk.backupId) },
          spec: { set: { status: change.backupTo, updatedAt } },
          if: cond.in('status', change.backupFrom),
        }),
      ),
    ];
    try {
      await this.table.transact(ops);
    } catch (err) {
      if (err instanceof ConditionFailedError) {
        throw new CheckpointStateError(`server backup ${checkpointId} or one of its disk backups is not in the status this change needs (${change.from.join('/')} -> ${change.to})`);
      }
      throw err;
    }
  }

  async delete(projectId: string, checkpointId: string): Promise<void> {
    await this.table.delete(key(projectId, checkpointId));
  }
}

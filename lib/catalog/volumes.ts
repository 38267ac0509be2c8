// Local-mode volume inventory: raw images (or block devices) registered per project, with the VBS-like
// status a backup or restore holds while it runs. A volume is locked by exactly one job at a time.
//
// A registered (not managed) volume's path is reserved across all projects by a second item, created and
// removed in the same transaction as the volume:
//   pk "PATH#<sha256 of the path>"  sk "PATH"  {projectId, volumeId}
//
// A volume the provider keeps outside this inventory (an EBS volume) is recorded here on first use (`adopt`):
// `external`, not managed, no path, size and attachment as the provider describes them. Its record carries the
// lock and status as a local volume's does, so the services and steps keep one code path. A restore that writes
// through a provider's one-snapshot restore keeps its state on the target's record (`restore`), and each segment
// task's count of stored blocks in its own item:
//   pk "P#<project>"  sk "RESTORE#<volumeId>#<jobId>#<NNNNNN>"  {blocks}
import { createHash } from 'node:crypto';
import type { VolumeInfo } from '../engine/ports.ts';
import type { FileIdentity } from '../volumes/file-identity.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table, WriteOp } from './table.ts';
import { CATALOG_GSI1, LOCKED_VOLUMES_KEY, fromItem, projectKey, volumeSortKey } from './tables.ts';

export type VolumeStatus = 'available' | 'in-use' | 'backing-up' | 'restoring' | 'error';

export interface VolumeRecord {
  projectId: string;
  volumeId: string;
  name: string;
  sizeBytes: number;
  /** Image file or block device. */
  path: string;
  /** True when the service created the image (it is removed with the volume). */
  managed: boolean;
  /** Device and inode of the file at registration: every open checks it is still that file. */
  fileIdentity?: FileIdentity;
  kmsKeyId?: string;
  status: VolumeStatus;
  /** The job holding the volume, and the status to return to when it lets go. */
  lockJobId?: string;
  statusBeforeLock?: VolumeStatus;
  /** Why the volume is `error` (e.g. the restore that left it half-written). */
  statusReason?: string;
  /** The server the volume is attached to (status `in-use`; see servers.ts). An attached volume cannot be deleted. */
  attachedServerId?: string;
  /** A volume the provider describes (EBS), recorded by `adopt`: `path` is empty, size and attachment are the provider's. */
  external?: boolean;
  /** A restore in progress through the provider's one-snapshot restore (see VolumeProvider.startRestore). */
  restore?: RestoreState;
  /**
   * The volume the last restore onto this one made, where the provider cannot write a volume in place (EBS): it
   * holds the restored data, and took this one's place on its server when this one was attached.
   */
  restoredTo?: string;
  createdAt: string;
  updatedAt: string;
}

export interface RestoreState {
  /** The restore's job (the one holding the volume). */
  jobId: string;
  /** The snapshot the restore writes into. */
  snapshotId: string;
  sizeBytes: number;
  /** Set before the restore is finished (the target may change from then on: a failure leaves it `error`). */
  finishing?: boolean;
}

export class VolumeLockedError extends Error {
  override name = 'VolumeLockedError';
}

/** The path of a registered volume is already another volume's (of any project). */
export class PathTakenError extends Error {
  override name = 'PathTakenError';
}

export interface VolumeStore {
  /** Throws PathTakenError when a registered volume's path is already registered. */
  create(volume: VolumeRecord): Promise<void>;
  get(projectId: string, volumeId: string): Promise<VolumeRecord | undefined>;
  list(projectId: string): Promise<VolumeRecord[]>;
  /** Deletes an unlocked volume attached to no server; false when it is locked, attached or gone. */
  delete(projectId: string, volumeId: string): Promise<boolean>;
  /**
   * Locks the volume for `jobId` and sets `busyStatus`, if it is in one of `from` and not locked.
   * Idempotent for the same job. Throws VolumeLockedError otherwise.
   */
  lock(projectId: string, volumeId: string, jobId: string, busyStatus: VolumeStatus, from: VolumeStatus[]): Promise<VolumeRecord>;
  /** Releases the lock `jobId` holds, back to the status before it (or `status`, with its `reason`). No-op if not held. */
  release(projectId: string, volumeId: string, jobId: string, status?: VolumeStatus, reason?: string): Promise<void>;
  /** Every locked volume of every project (a restart checks each lock's job). */
  listLocked(): Promise<VolumeRecord[]>;
  /**
   * Records a volume `info` the provider described (see the top of this file), or refreshes an `external` one that
   * no job holds: size, key, name, and status `in-use` when attached, else `available`. A local volume of that id
   * is returned as it is.
   */
  adopt(projectId: string, info: VolumeInfo): Promise<VolumeRecord>;
  /** Sets `restore` (undefined: removes it) and the `restoredTo` of the volume `jobId` holds; false when it does not hold it. */
  setRestore(projectId: string, volumeId: string, jobId: string, restore: RestoreState | undefined, restoredTo?: string): Promise<boolean>;
  /** Records how many blocks one segment task of the restore `jobId` stored (a retried task overwrites its count). */
  recordRestoreSegment(projectId: string, volumeId: string, jobId: string, segment: number, blocks: number): Promise<void>;
  /** The sum of the restore's recorded segment counts. */
  restoreBlocks(projectId: string, volumeId: string, jobId: string): Promise<number>;
  /** Removes the restore's segment counts. */
  clearRestoreSegments(projectId: string, volumeId: string, jobId: string): Promise<void>;
}

/** Lock attempts that lose a race against another status change before giving up. */
const LOCK_ATTEMPTS = 5;

const volumeKey = (projectId: string, volumeId: string) => ({ pk: projectKey(projectId), sk: volumeSortKey(volumeId) });
const restoreSegmentKey = (projectId: string, volumeId: string, jobId: string, segment?: number) => ({
  pk: projectKey(projectId),
  sk: `RESTORE#${volumeId}#${jobId}#${segment === undefined ? '' : String(segment).padStart(6, '0')}`,
});
export const registeredPathKey = (path: string) => ({ pk: `PATH#${createHash('sha256').update(path).digest('hex')}`, sk: 'PATH' });

export class TableVolumeStore implements VolumeStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async create(volume: VolumeRecord): Promise<void> {
    const item = { ...volumeKey(volume.projectId, volume.volumeId), ...volume };
    if (volume.managed) return this.table.put(item, cond.notExists());
    const pathKey = registeredPathKey(volume.path);
    try {
      await this.table.transact([
        { put: item, if: cond.notExists() },
        { put: { ...pathKey, projectId: volume.projectId, volumeId: volume.volumeId }, if: cond.notExists() },
      ]);
    } catch (err) {
      if (err instanceof ConditionFailedError && (await this.table.get(pathKey))) throw new PathTakenError(`path ${volume.path} is already registered`);
      throw err;
    }
  }

  async get(projectId: string, volumeId: string): Promise<VolumeRecord | undefined> {
    const item = await this.table.get(volumeKey(projectId, volumeId));
    return item ? fromItem<VolumeRecord>(item) : undefined;
  }

  async list(projectId: string): Promise<VolumeRecord[]> {
    const out: VolumeRecord[] = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: volumeSortKey('') } })) {
      out.push(fromItem<VolumeRecord>(item));
    }
    return out;
  }

  async delete(projectId: string, volumeId: string): Promise<boolean> {
    const ops: WriteOp[] = [{ delete: volumeKey(projectId, volumeId), if: cond.and(cond.exists(), cond.absent('lockJobId'), cond.absent('attachedServerId')) }];
    const volume = await this.get(projectId, volumeId);
    if (volume && !volume.managed) {
      const pathKey = registeredPathKey(volume.path);
      const reservation = await this.table.get(pathKey);
      // Volumes registered before paths were reserved have no reservation to remove.
      if (reservation?.projectId === projectId && reservation.volumeId === volumeId) {
        ops.push({ delete: pathKey, if: cond.and(cond.eq('projectId', projectId), cond.eq('volumeId', volumeId)) });
      }
    }
    try {
      await this.table.transact(ops);
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async lock(projectId: string, volumeId: string, jobId: string, busyStatus: VolumeStatus, from: VolumeStatus[]): Promise<VolumeRecord> {
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      const current = await this.get(projectId, volumeId);
      if (current?.lockJobId === jobId) return current;
      if (!current || current.lockJobId || !from.includes(current.status)) throw lockedError(volumeId, current);
      // The status to return to is the one read above; the condition makes sure it is still the status.
      try {
        const item = await this.table.update(
          volumeKey(projectId, volumeId),
          {
            set: {
              statusBeforeLock: current.status,
              status: busyStatus,
              lockJobId: jobId,
              updatedAt: new Date().toISOString(),
              // While locked, the volume is listed under LOCKED_VOLUMES_KEY in gsi1.
              [CATALOG_GSI1.partitionKey]: LOCKED_VOLUMES_KEY,
              [CATALOG_GSI1.sortKey]: `${projectId}#${volumeId}`,
            },
            remove: ['statusReason'],
          },
          cond.and(cond.exists(), cond.absent('lockJobId'), cond.eq('status', current.status)),
        );
        return fromItem<VolumeRecord>(item);
      } catch (err) {
        if (!(err instanceof ConditionFailedError)) throw err;
      }
    }
    throw lockedError(volumeId, await this.get(projectId, volumeId));
  }

  async release(projectId: string, volumeId: string, jobId: string, status?: VolumeStatus, reason?: string): Promise<void> {
    const current = await this.get(projectId, volumeId);
    if (current?.lockJobId !== jobId) return;
    try {
      await this.table.update(
        volumeKey(projectId, volumeId),
        {
          set: { status: status ?? current.statusBeforeLock ?? 'available', updatedAt: new Date().toISOString(), ...(reason ? { statusReason: reason.slice(0, 1000) } : {}) },
          remove: ['lockJobId', 'statusBeforeLock', CATALOG_GSI1.partitionKey, CATALOG_GSI1.sortKey],
        },
        cond.eq('lockJobId', jobId),
      );
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
    }
  }

  async listLocked(): Promise<VolumeRecord[]> {
    const out: VolumeRecord[] = [];
    for await (const item of queryAll(this.table, { index: 'gsi1', partition: LOCKED_VOLUMES_KEY })) {
      // Index reads may lag: read the volume itself.
      const { projectId, volumeId } = fromItem<VolumeRecord>(item);
      const volume = await this.get(projectId, volumeId);
      if (volume?.lockJobId) out.push(volume);
    }
    return out;
  }

  async adopt(projectId: string, info: VolumeInfo): Promise<VolumeRecord> {
    const described = {
      name: info.name ?? info.volumeId,
      sizeBytes: info.sizeBytes,
      status: (info.attachedServerId ? 'in-use' : 'available') as VolumeStatus,
      ...(info.kmsKeyId ? { kmsKeyId: info.kmsKeyId } : {}),
      ...(info.attachedServerId ? { attachedServerId: info.attachedServerId } : {}),
    };
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      const current = await this.get(projectId, info.volumeId);
      if (current && !current.external) return current;
      const at = new Date().toISOString();
      try {
        if (!current) {
          const record: VolumeRecord = { projectId, volumeId: info.volumeId, path: '', managed: false, external: true, ...described, createdAt: at, updatedAt: at };
          await this.table.put({ ...volumeKey(projectId, info.volumeId), ...record }, cond.notExists());
          return record;
        }
        // A held volume keeps the status its job set; the provider's view is taken again once it is let go.
        if (current.lockJobId) return current;
        const same =
          current.name === described.name &&
          current.sizeBytes === described.sizeBytes &&
          current.status === described.status &&
          current.kmsKeyId === described.kmsKeyId &&
          current.attachedServerId === described.attachedServerId &&
          current.statusReason === undefined;
        if (same) return current;
        const item = await this.table.update(
          volumeKey(projectId, info.volumeId),
          { set: { ...described, updatedAt: at }, remove: ['statusReason', ...(described.kmsKeyId ? [] : ['kmsKeyId']), ...(described.attachedServerId ? [] : ['attachedServerId'])] },
          cond.and(cond.exists(), cond.absent('lockJobId')),
        );
        return fromItem<VolumeRecord>(item);
      } catch (err) {
        if (!(err instanceof ConditionFailedError)) throw err; // lost a race with a lock or another adopt: look again
      }
    }
    return (await this.get(projectId, info.volumeId))!;
  }

  async setRestore(projectId: string, volumeId: string, jobId: string, restore: RestoreState | undefined, restoredTo?: string): Promise<boolean> {
    try {
      await this.table.update(
        volumeKey(projectId, volumeId),
        { set: { ...(restore ? { restore } : {}), ...(restoredTo ? { restoredTo } : {}), updatedAt: new Date().toISOString() }, ...(restore ? {} : { remove: ['restore'] }) },
        cond.eq('lockJobId', jobId),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async recordRestoreSegment(projectId: string, volumeId: string, jobId: string, segment: number, blocks: number): Promise<void> {
    await this.table.put({ ...restoreSegmentKey(projectId, volumeId, jobId, segment), blocks });
  }

  private async *restoreSegmentItems(projectId: string, volumeId: string, jobId: string) {
    const { pk, sk } = restoreSegmentKey(projectId, volumeId, jobId);
    yield* queryAll(this.table, { partition: pk, sortKey: { prefix: sk } });
  }

  async restoreBlocks(projectId: string, volumeId: string, jobId: string): Promise<number> {
    let sum = 0;
    for await (const item of this.restoreSegmentItems(projectId, volumeId, jobId)) sum += Number(item.blocks);
    return sum;
  }

  async clearRestoreSegments(projectId: string, volumeId: string, jobId: string): Promise<void> {
    for await (const item of this.restoreSegmentItems(projectId, volumeId, jobId)) await this.table.delete({ pk: String(item.pk), sk: String(item.sk) });
  }
}

function lockedError(volumeId: string, current: VolumeRecord | undefined): VolumeLockedError {
  if (!current) return new VolumeLockedError(`volume ${volumeId} not found`);
  return new VolumeLockedError(`volume ${volumeId} is ${current.status}${current.lockJobId ? ` (job ${current.lockJobId})` : ''}`);
}

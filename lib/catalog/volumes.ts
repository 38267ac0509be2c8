// Local-mode volume inventory: raw images (or block devices) registered per project, with the VBS-like
// status a backup or restore holds while it runs. A volume is locked by exactly one job at a time.
//
// A registered (not managed) volume's path is reserved across all projects by a second item, created and
// removed in the same transaction as the volume:
//   pk "PATH#<sha256 of the path>"  sk "PATH"  {projectId, volumeId}
import { createHash } from 'node:crypto';
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
  createdAt: string;
  updatedAt: string;
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
}

/** Lock attempts that lose a race against another status change before giving up. */
const LOCK_ATTEMPTS = 5;

const volumeKey = (projectId: string, volumeId: string) => ({ pk: projectKey(projectId), sk: volumeSortKey(volumeId) });
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
}

function lockedError(volumeId: string, current: VolumeRecord | undefined): VolumeLockedError {
  if (!current) return new VolumeLockedError(`volume ${volumeId} not found`);
  return new VolumeLockedError(`volume ${volumeId} is ${current.status}${current.lockJobId ? ` (job ${current.lockJobId})` : ''}`);
}

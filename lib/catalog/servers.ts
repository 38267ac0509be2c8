// Local-mode servers: groups of volumes (disk images) with a power status and, optionally, the freeze and
// thaw commands that hold the server's writers while its disks are captured (../volumes/local-provider.ts).
//
//   server   pk "P#<project>"  sk "SERVER#<serverId>"  (the record below)
//
// A volume is attached to at most one server: the volume's own record names the server (`attachedServerId`,
// status `in-use`), written in the same transaction as the server's disk list, each side under a condition.
// A server's disk list changes only from the version it was read at (`version`), so two concurrent
// attachments to one server cannot both take the same device. Deleting a server detaches its disks in the
// same transaction, which is why a server has at most MAX_SERVER_DISKS disks (one op each, plus the server).
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table, WriteOp } from './table.ts';
import { fromItem, projectKey, serverSortKey, volumeSortKey } from './tables.ts';
import type { VolumeRecord } from './volumes.ts';

export type LocalServerStatus = 'running' | 'stopped';

/** The most disks a server may have: its deletion (and a server backup's bookkeeping) is one transaction of 25 writes. */
export const MAX_SERVER_DISKS = 24;

export interface ServerDiskRecord {
  volumeId: string;
  /** Where the disk is attached, e.g. `/dev/vda`. */
  device: string;
  bootable: boolean;
}

export interface ServerRecord {
  projectId: string;
  /** A version 4 UUID. */
  serverId: string;
  name: string;
  status: LocalServerStatus;
  disks: ServerDiskRecord[];
  /** Holds the server's writers (e.g. a guest filesystem freeze): argv, run without a shell. Set with `thawHook`. */
  freezeHook?: string[];
  /** Lets them go again; run after every freeze, whatever happened in between. */
  thawHook?: string[];
  /** How long either hook may run before it is killed (default in the provider). */
  hookTimeoutSeconds?: number;
  /** Bumped by every change of `disks`: a change is written only from the version it was computed from. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The server changed (or vanished) since it was read, or a volume was not free to attach or detach: nothing was written. */
export class ServerWriteConflictError extends Error {
  override name = 'ServerWriteConflictError';
}

export interface ServerStore {
  /** Creates the server and attaches its disks (each volume `available`, free and unlocked). Throws ServerWriteConflictError. */
  create(server: ServerRecord): Promise<void>;
  get(projectId: string, serverId: string): Promise<ServerRecord | undefined>;
  list(projectId: string): Promise<ServerRecord[]>;
  /** Sets the power status; undefined when there is no such server. */
  setStatus(projectId: string, serverId: string, status: LocalServerStatus): Promise<ServerRecord | undefined>;
  /** Sets (or, with undefined, removes) both hooks; undefined when there is no such server. */
  setHooks(projectId: string, serverId: string, hooks: { freeze: string[]; thaw: string[]; timeoutSeconds?: number } | undefined): Promise<ServerRecord | undefined>;
  /**
   * Replaces the disk list of `current` (as read) with `disks`, attaching the volumes in `attach` and detaching
   * those in `detach` in the same transaction. Throws ServerWriteConflictError when the server is no longer at
   * `current.version` or a volume is not free (attach: `available`, unlocked, attached nowhere; detach:
   * attached to this server and unlocked).
   */
  changeDisks(current: ServerRecord, disks: ServerDiskRecord[], change: { attach?: string[]; detach?: string[] }): Promise<ServerRecord>;
  /** Deletes the server at `current.version` and detaches all its disks (all unlocked). Throws ServerWriteConflictError. */
  delete(current: ServerRecord): Promise<void>;
}

const serverKey = (projectId: string, serverId: string) => ({ pk: projectKey(projectId), sk: serverSortKey(serverId) });
const volumeKey = (projectId: string, volumeId: string) => ({ pk: projectKey(projectId), sk: volumeSortKey(volumeId) });

export class TableServerStore implements ServerStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async create(server: ServerRecord): Promise<void> {
    if (server.disks.length > MAX_SERVER_DISKS) throw new Error(`a server has at most ${MAX_SERVER_DISKS} disks`);
    const ops: WriteOp[] = [{ put: { ...serverKey(server.projectId, server.serverId), ...server }, if: cond.notExists() }];
    for (const d of server.disks) ops.push(this.attachOp(server.projectId, server.serverId, d.volumeId, server.updatedAt));
    await this.write(ops);
  }

  async get(projectId: string, serverId: string): Promise<ServerRecord | undefined> {
    const item = await this.table.get(serverKey(projectId, serverId));
    return item ? fromItem<ServerRecord>(item) : undefined;
  }

  async list(projectId: string): Promise<ServerRecord[]> {
    const out: ServerRecord[] = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: serverSortKey('') } })) {
      out.push(fromItem<ServerRecord>(item));
    }
    return out;
  }

  async setStatus(projectId: string, serverId: string, status: LocalServerStatus): Promise<ServerRecord | undefined> {
    return this.updateIfExists(projectId, serverId, { status, updatedAt: new Date().toISOString() });
  }

  async setHooks(projectId: string, serverId: string, hooks: { freeze: string[]; thaw: string[]; timeoutSeconds?: number } | undefined): Promise<ServerRecord | undefined> {
    return this.updateIfExists(projectId, serverId, {
      freezeHook: hooks?.freeze,
      thawHook: hooks?.thaw,
      hookTimeoutSeconds: hooks?.timeoutSeconds,
      updatedAt: new Date().toISOString(),
    });
  }

  async changeDisks(current: ServerRecord, disks: ServerDiskRecord[], change: { attach?: string[]; detach?: string[] }): Promise<ServerRecord> {
    if (disks.length > MAX_SERVER_DISKS) throw new Error(`a server has at most ${MAX_SERVER_DISKS} disks`);
    const { projectId, serverId } = current;
    const at = new Date().toISOString();
    const ops: WriteOp[] = [
      {
        update: serverKey(projectId, serverId),
        spec: { set: { disks, version: current.version + 1, updatedAt: at } },
        if: cond.and(cond.exists(), cond.eq('version', current.version)),
      },
    ];
    for (const volumeId of change.attach ?? []) ops.push(this.attachOp(projectId, serverId, volumeId, at));
    for (const volumeId of change.detach ?? []) {
      const op = await this.detachOp(projectId, serverId, volumeId, at);
      if (op) ops.push(op);
    }
    await this.write(ops);
    return { ...current, disks, version: current.version + 1, updatedAt: at };
  }

  async delete(current: ServerRecord): Promise<void> {
    const { projectId, serverId } = current;
    const at = new Date().toISOString();
    const ops: WriteOp[] = [{ delete: serverKey(projectId, serverId), if: cond.and(cond.exists(), cond.eq('version', current.version)) }];
    for (const d of current.disks) {
      const op = await this.detachOp(projectId, serverId, d.volumeId, at);
      if (op) ops.push(op);
    }
    await this.write(ops);
  }

  /** An available, unlocked volume attached nowhere becomes `in-use` by the server. */
  private attachOp(projectId: string, serverId: string, volumeId: string, at: string): WriteOp {
    return {
      update: volumeKey(projectId, volumeId),
      spec: { set: { attachedServerId: serverId, status: 'in-use', updatedAt: at } },
      if: cond.and(cond.exists(), cond.absent('attachedServerId'), cond.absent('lockJobId'), cond.eq('status', 'available')),
    };
  }

  /**
   * The volume's side of a detachment: `in-use` becomes `available` (another status, such as `error` after a
   * failed restore, stays). None when the volume is gone or no longer names this server (nothing to undo).
   */
  private async detachOp(projectId: string, serverId: string, volumeId: string, at: string): Promise<WriteOp | undefined> {
    const item = await this.table.get(volumeKey(projectId, volumeId));
    if (!item) return undefined;
    const volume = fromItem<VolumeRecord>(item);
    if (volume.attachedServerId !== serverId) return undefined;
    return {
      update: volumeKey(projectId, volumeId),
      spec: { set: { status: volume.status === 'in-use' ? 'available' : volume.status, updatedAt: at }, remove: ['attachedServerId'] },
      if: cond.and(cond.eq('attachedServerId', serverId), cond.absent('lockJobId'), cond.eq('status', volume.status)),
    };
  }

  private async updateIfExists(projectId: string, serverId: string, set: Record<string, unknown>): Promise<ServerRecord | undefined> {
    try {
      return fromItem<ServerRecord>(await this.table.update(serverKey(projectId, serverId), { set }, cond.exists()));
    } catch (err) {
      if (err instanceof ConditionFailedError) return undefined;
      throw err;
    }
  }

  private async write(ops: WriteOp[]): Promise<void> {
    try {
      await (ops.length === 1 ? this.writeOne(ops[0]!) : this.table.transact(ops));
    } catch (err) {
      if (err instanceof ConditionFailedError) throw new ServerWriteConflictError(err.message);
      throw err;
    }
  }

  private async writeOne(op: WriteOp): Promise<void> {
    if ('put' in op) return this.table.put(op.put, op.if);
    if ('delete' in op) return this.table.delete(op.delete, op.if);
    await this.table.update(op.update, op.spec, op.if);
  }
}

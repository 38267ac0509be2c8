// Backup shares: a project (the owner) lets another project (the receiver) see one of its backups and create
// volumes from it. A share is one record per (backup, receiver), kept as three items written and removed in
// one transaction (table design in tables.ts):
//   - the owner's view   P#<owner>    SHARE#<backupId>#<toProject>   (what it shared; a backup's shares by prefix)
//   - the receiver's view P#<toProject> SHARED#<backupId>            (what was shared with it; one get per backup)
//   - the id lookup      SHAREID#<shareId> SHARE                     (show and delete by the share's id)
// Each item carries the whole record (it never changes while it lives), so every view reads one partition.
// Creating the same (backup, receiver) twice fails on the owner's item (ShareExistsError); the receiver's item
// is keyed by backup id alone, which is safe because backup ids are random UUIDs, unique across projects.
import { ConditionFailedError, TransactionConflictError, cond, queryAll } from './table.ts';
import type { Table, WriteOp } from './table.ts';
import { SHARE_ID_SORT_KEY, fromItem, projectKey, shareIdKey, shareSortKey, sharedSortKey } from './tables.ts';

/**
 * The job entity naming the project that owns the backup a restore job reads, set only when that is not the job's
 * project (a new volume from a backup shared with it); the restore workflow's steps read the backup there.
 */
export const BACKUP_PROJECT_ENTITY = 'backup_project_id';

export interface ShareRecord {
  shareId: string;
  backupId: string;
  /** The project that owns the backup and shared it. */
  fromProjectId: string;
  toProjectId: string;
  createdAt: string;
  updatedAt: string;
}

/** The (backup, receiver) pair is shared already. */
export class ShareExistsError extends Error {
  override name = 'ShareExistsError';
}

export interface ShareStore {
  /** Throws ShareExistsError when the backup is already shared with `toProjectId`. */
  create(share: ShareRecord): Promise<void>;
  /** By share id, whichever project asks (the service checks the asker is the owner or the receiver). */
  get(shareId: string): Promise<ShareRecord | undefined>;
  /** The owner's shares, all or those of one backup, in key order (by backup, then receiver). */
  listShared(ownerProjectId: string, backupId?: string): Promise<ShareRecord[]>;
  /** The shares other projects made with this one. */
  listReceived(toProjectId: string): Promise<ShareRecord[]>;
  /** The share of `backupId` with `toProjectId`, if there is one. */
  getReceived(toProjectId: string, backupId: string): Promise<ShareRecord | undefined>;
  /** Removes the share; false when it was gone already. */
  delete(share: ShareRecord): Promise<boolean>;
}

const ownerKey = (s: Pick<ShareRecord, 'fromProjectId' | 'backupId' | 'toProjectId'>) => ({ pk: projectKey(s.fromProjectId), sk: shareSortKey(s.backupId, s.toProjectId) });
const receiverKey = (toProjectId: string, backupId: string) => ({ pk: projectKey(toProjectId), sk: sharedSortKey(backupId) });
const idKey = (shareId: string) => ({ pk: shareIdKey(shareId), sk: SHARE_ID_SORT_KEY });

/** A transaction that collided with another write is tried again this many times. */
const ATTEMPTS = 5;

async function transactWithRetry(table: Table, ops: WriteOp[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await table.transact(ops);
    } catch (err) {
      if (!(err instanceof TransactionConflictError) || attempt >= ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

export class TableShareStore implements ShareStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async create(share: ShareRecord): Promise<void> {
    const record = { ...share };
    try {
      await transactWithRetry(this.table, [
        { put: { ...ownerKey(share), ...record }, if: cond.notExists() },
        { put: { ...receiverKey(share.toProjectId, share.backupId), ...record }, if: cond.notExists() },
        { put: { ...idKey(share.shareId), ...record }, if: cond.notExists() },
      ]);
    } catch (err) {
      if (err instanceof ConditionFailedError) throw new ShareExistsError(`backup ${share.backupId} is already shared with project ${share.toProjectId}`);
      throw err;
    }
  }

  async get(shareId: string): Promise<ShareRecord | undefined> {
    const item = await this.table.get(idKey(shareId));
    return item ? fromItem<ShareRecord>(item) : undefined;
  }

  async listShared(ownerProjectId: string, backupId?: string): Promise<ShareRecord[]> {
    return this.collect(projectKey(ownerProjectId), shareSortKey(backupId ?? ''));
  }

  async listReceived(toProjectId: string): Promise<ShareRecord[]> {
    return this.collect(projectKey(toProjectId), sharedSortKey());
  }

  async getReceived(toProjectId: string, backupId: string): Promise<ShareRecord | undefined> {
    const item = await this.table.get(receiverKey(toProjectId, backupId));
    return item ? fromItem<ShareRecord>(item) : undefined;
  }

  async delete(share: ShareRecord): Promise<boolean> {
    try {
      // The id item must be this share's: a share deleted and made again has a new id, which this one must not remove.
      await transactWithRetry(this.table, [
        { delete: idKey(share.shareId), if: cond.exists() },
        { delete: ownerKey(share), if: cond.eq('shareId', share.shareId) },
        { delete: receiverKey(share.toProjectId, share.backupId), if: cond.eq('shareId', share.shareId) },
      ]);
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  private async collect(partition: string, prefix: string): Promise<ShareRecord[]> {
    const out: ShareRecord[] = [];
    for await (const item of queryAll(this.table, { partition, sortKey: { prefix } })) out.push(fromItem<ShareRecord>(item));
    return out;
  }
}

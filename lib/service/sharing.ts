// Backup sharing (VBS `os-vendor-backup-sharing`): the project that owns an available backup shares it with
// other projects. A project a backup is shared with sees it among its backups and can create a new volume
// from it (the restore reads the owner's chunks under the owner's key domain, see lib/engine/restore.ts), but
// cannot restore it onto an existing volume, delete it, share it on or remove the share (OpenVBS.1903).
//
// Rules, where the reference leaves the choice to us:
// - Only an `available` backup of the project's own, not one taken by a server backup (CSBS deletes those),
//   can be shared (OpenVBS.1902); a project cannot share with itself (OpenVBS.1901), and a (backup, project) pair
//   only once: a request naming a project the backup is shared with already answers OpenVBS.1905 and shares nothing.
// - The owner cannot delete a backup while it is shared (OpenVBS.1904): it removes the shares first. So a
//   receiver's volume never loses its source mid-restore, and retention skips shared backups (isShared).
// - Share ids are version 4 UUIDs; shares never change, so `updated_at` is `created_at`; a removed share is
//   gone (it is not kept with `deleted`), so `deleted` and `deleted_at` are always null.
import { randomUUID } from 'node:crypto';
import type { BackupStore } from '../catalog/backups.ts';
import { ShareExistsError } from '../catalog/shares.ts';
import type { ShareRecord, ShareStore } from '../catalog/shares.ts';
import type { BackupRecord } from '../engine/ports.ts';
import { isServerBackup } from './backup-rules.ts';
import { sharedNotOwned } from './backups.ts';
import type { BackupDetail } from './backups.ts';
import { backupNotFound, badRequest, conflict, notFound } from './errors.ts';
import { checkProjectId, isId } from './ids.ts';
import { pageOf } from './paging.ts';
import type { PageRequest } from './paging.ts';

/** Projects one request may share a backup with. */
export const MAX_SHARE_PROJECTS = 10;

/** Sort keys the reference lists; `container_format` and `disk_format` (image attributes a backup lacks) sort as `created_at`. */
export const SHARE_SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'] as const;
export type ShareSortKey = (typeof SHARE_SORT_KEYS)[number];

export interface ShareFilter {
  /** true: the shares other projects made with this one; otherwise the ones this project made. */
  shareToMe?: boolean;
  backupId?: string;
  fromProjectId?: string;
  toProjectId?: string;
  volumeId?: string;
  /** Part of the backup's name (case-insensitive). */
  name?: string;
  status?: string;
  availabilityZone?: string;
}

export interface ShareListQuery extends ShareFilter, PageRequest {
  sortKey?: ShareSortKey;
  sortDir?: 'asc' | 'desc';
}

/** A share with the backup it shares. */
export interface ShareDetail {
  share: ShareRecord;
  backup: BackupDetail;
}

export interface SharePage {
  shares: ShareDetail[];
  nextMarker?: string;
  limit: number;
}

export interface SharingServiceDeps {
  shares: ShareStore;
  backups: BackupStore;
  /** What backups report as `availability_zone` (the `availability_zone` filter compares with it). */
  availabilityZone?: string;
}

const invalidShare = (message: string) => badRequest('OpenVBS.1901', message);
export const shareNotFound = (shareId: string) => notFound(`backup share ${shareId} not found`);

/** A backup that is shared is past `creating`: its progress is whole (none for a failed one). */
const detailOf = (record: BackupRecord, viewer: string): BackupDetail => ({
  record,
  progress: record.status === 'error' ? 0 : 100,
  ...(record.projectId !== viewer ? { sharedTo: viewer } : {}),
});

export class SharingService {
  private readonly shares: ShareStore;
  private readonly backups: BackupStore;
  readonly availabilityZone: string;

  constructor(deps: SharingServiceDeps) {
    this.shares = deps.shares;
    this.backups = deps.backups;
    this.availabilityZone = deps.availabilityZone ?? 'local';
  }

  /** Shares the project's backup with each project named (all or none). */
  async create(projectId: string, req: { backupId: string; toProjectIds: readonly string[] }): Promise<ShareRecord[]> {
    checkProjectId(projectId);
    const targets = [...new Set(req.toProjectIds)];
    if (!targets.length) throw invalidShare('to_project_ids must name at least one project');
    if (targets.length > MAX_SHARE_PROJECTS) throw invalidShare(`a backup can be shared with at most ${MAX_SHARE_PROJECTS} projects per request`);
    const badId = targets.find((p) => !isId(p));
    if (badId !== undefined) throw invalidShare(`to_project_ids: ${JSON.stringify(badId)} is not a project id`);
    if (targets.includes(projectId)) throw invalidShare('a backup cannot be shared with the project that owns it');
    const backup = await this.ownBackup(projectId, req.backupId, 'share it');
    this.checkShareable(backup);
    const already = new Set((await this.shares.listShared(projectId, backup.backupId)).map((s) => s.toProjectId));
    const dup = targets.find((p) => already.has(p));
    if (dup !== undefined) throw conflict('OpenVBS.1905', `backup ${backup.backupId} is already shared with project ${dup}`);

    const made: ShareRecord[] = [];
    const undo = () => Promise.allSettled(made.map((s) => this.shares.delete(s)));
    try {
      for (const toProjectId of targets) {
        const at = new Date().toISOString();
        const share: ShareRecord = { shareId: randomUUID(), backupId: backup.backupId, fromProjectId: projectId, toProjectId, createdAt: at, updatedAt: at };
        await this.shares.create(share);
        made.push(share);
      }
    } catch (err) {
      await undo();
      if (err instanceof ShareExistsError) throw conflict('OpenVBS.1905', err.message);
      throw err;
    }
    // A delete that started since the check above must not leave shares of a backup on its way out: the delete
    // looks for shares after it marks the backup `deleting` (BackupService.delete), and this looks after writing them.
    const now = await this.backups.getBackup(projectId, backup.backupId);
    if (!now || (now.status !== 'available' && now.status !== 'restoring')) {
      await undo();
      throw conflict('OpenVBS.1902', `backup ${backup.backupId} is ${now?.status ?? 'gone'}; only an available backup can be shared`);
    }
    return made;
  }

  async list(projectId: string, query: ShareListQuery = {}): Promise<SharePage> {
    const items = await this.matching(projectId, query);
    const value = sortValue(query.sortKey ?? 'created_at');
    const cmp = (a: ShareDetail, b: ShareDetail) => {
      const va = value(a);
      const vb = value(b);
      if (va !== vb) return va < vb ? -1 : 1;
      return a.share.shareId < b.share.shareId ? -1 : a.share.shareId > b.share.shareId ? 1 : 0;
    };
    items.sort(query.sortDir === 'asc' ? cmp : (a, b) => cmp(b, a));
    const page = pageOf(items, query, (d) => d.share.shareId);
    return { shares: page.items, limit: page.limit, ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}) };
  }

  async count(projectId: string, filter: ShareFilter = {}): Promise<number> {
    return (await this.matching(projectId, filter)).length;
  }

  /** A share the project made or received. */
  async get(projectId: string, shareId: string): Promise<ShareDetail> {
    checkProjectId(projectId);
    const share = isId(shareId) ? await this.shares.get(shareId) : undefined;
    if (!share || (share.fromProjectId !== projectId && share.toProjectId !== projectId)) throw shareNotFound(shareId);
    const record = await this.backups.getBackup(share.fromProjectId, share.backupId);
    if (!record) throw shareNotFound(shareId);
    return { share, backup: detailOf(record, projectId) };
  }

  /**
   * Removes a share the project made; with `isBackupId`, `id` is a backup's id and every share of it goes
   * (as the VBS `is_backup_id` query asks).
   */
  async delete(projectId: string, id: string, options: { isBackupId?: boolean } = {}): Promise<void> {
    checkProjectId(projectId);
    if (!isId(id)) throw options.isBackupId ? backupNotFound(id) : shareNotFound(id);
    let doomed: ShareRecord[];
    if (options.isBackupId) {
      doomed = await this.shares.listShared(projectId, id);
      if (!doomed.length) {
        const received = await this.shares.getReceived(projectId, id);
        if (received) throw sharedNotOwned(id, received.fromProjectId, 'remove its shares');
        if (!(await this.backups.getBackup(projectId, id))) throw backupNotFound(id);
        return; // an own backup shared with nobody: nothing to remove
      }
    } else {
      const share = await this.shares.get(id);
      if (!share || (share.fromProjectId !== projectId && share.toProjectId !== projectId)) throw shareNotFound(id);
      if (share.fromProjectId !== projectId) throw sharedNotOwned(share.backupId, share.fromProjectId, 'remove the share');
      doomed = [share];
    }
    await Promise.all(doomed.map((s) => this.shares.delete(s)));
  }

  /** Whether the project's backup is shared with any other project (policies' retention skips those). */
  async isShared(projectId: string, backupId: string): Promise<boolean> {
    return (await this.shares.listShared(projectId, backupId)).length > 0;
  }

  /** The project's own backup, for what only its owner may do. */
  private async ownBackup(projectId: string, backupId: string, what: string): Promise<BackupRecord> {
    if (!isId(backupId)) throw backupNotFound(backupId);
    const backup = await this.backups.getBackup(projectId, backupId);
    if (backup) return backup;
    const received = await this.shares.getReceived(projectId, backupId);
    if (received) throw sharedNotOwned(backupId, received.fromProjectId, what);
    throw backupNotFound(backupId);
  }

  private checkShareable(backup: BackupRecord): void {
    if (isServerBackup(backup)) {
      throw conflict('OpenVBS.1902', `backup ${backup.backupId} belongs to a server backup; a server backup's disk backups cannot be shared`);
    }
    if (backup.status !== 'available') throw conflict('OpenVBS.1902', `backup ${backup.backupId} is ${backup.status}; only an available backup can be shared`);
  }

  /** The shares (made or, with shareToMe, received) that pass the filter, each with its backup. */
  private async matching(projectId: string, filter: ShareFilter): Promise<ShareDetail[]> {
    checkProjectId(projectId);
    let shares = filter.shareToMe ? await this.shares.listReceived(projectId) : await this.shares.listShared(projectId);
    if (filter.backupId !== undefined) shares = shares.filter((s) => s.backupId === filter.backupId);
    if (filter.fromProjectId !== undefined) shares = shares.filter((s) => s.fromProjectId === filter.fromProjectId);
    if (filter.toProjectId !== undefined) shares = shares.filter((s) => s.toProjectId === filter.toProjectId);
    if (filter.availabilityZone !== undefined && filter.availabilityZone !== this.availabilityZone) return [];
    // One backup read per distinct backup: a project shares a backup with several projects.
    const records = new Map<string, Promise<BackupRecord | undefined>>();
    const recordOf = (s: ShareRecord) => {
      const key = `${s.fromProjectId}\n${s.backupId}`;
      let hit = records.get(key);
      if (!hit) records.set(key, (hit = this.backups.getBackup(s.fromProjectId, s.backupId)));
      return hit;
    };
    const joined = await Promise.all(shares.map(async (share) => ({ share, record: await recordOf(share) })));
    const needle = filter.name?.toLowerCase();
    return joined
      .filter((j): j is { share: ShareRecord; record: BackupRecord } => j.record !== undefined)
      .filter(({ record }) => filter.volumeId === undefined || record.volumeId === filter.volumeId)
      .filter(({ record }) => filter.status === undefined || record.status === filter.status)
      .filter(({ record }) => needle === undefined || (record.name ?? '').toLowerCase().includes(needle))
      .map(({ share, record }) => ({ share, backup: detailOf(record, projectId) }));
  }
}

function sortValue(key: ShareSortKey): (d: ShareDetail) => string | number {
  switch (key) {
    case 'name':
      return (d) => d.backup.record.name ?? '';
    case 'status':
      return (d) => d.backup.record.status;
    case 'size':
      return (d) => d.backup.record.sizeBytes;
    case 'id':
      return (d) => d.share.shareId;
    case 'updated_at':
      return (d) => d.share.updatedAt;
    default:
      return (d) => d.share.createdAt;
  }
}

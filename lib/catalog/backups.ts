// Backups and key domains over the table port (table design in tables.ts). The engine sees them as its
// BackupCatalog port; the services also list a project's backups.
import type { BackupCatalog, BackupRecord, BackupStats, BackupStatus, KeyDomainRecord } from '../engine/ports.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table } from './table.ts';
import { ALL_DOMAINS_KEY, CATALOG_GSI1, backupSortKey, domainSortKey, fromItem, projectKey, segmentSortKey, volumeBackupsKey } from './tables.ts';

/** An update found the backup missing or not in the expected status. */
export class BackupStateError extends Error {
  override name = 'BackupStateError';
}

export interface BackupStore extends BackupCatalog {
  /**
   * All backups of a project (any status), or of one of its volumes (then oldest first). The service layer
   * filters, sorts and pages in memory: a project holds at most a few thousand backups.
   */
  listBackups(projectId: string, options?: { volumeId?: string }): Promise<BackupRecord[]>;
}

const backupKey = (projectId: string, backupId: string) => ({ pk: projectKey(projectId), sk: backupSortKey(backupId) });
const domainKey = (projectId: string, kmsKeyId: string) => ({ pk: projectKey(projectId), sk: domainSortKey(kmsKeyId) });

export class TableBackupStore implements BackupStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async createBackup(record: BackupRecord): Promise<void> {
    await this.table.put(
      {
        ...backupKey(record.projectId, record.backupId),
        [CATALOG_GSI1.partitionKey]: volumeBackupsKey(record.projectId, record.volumeId),
        [CATALOG_GSI1.sortKey]: `${record.createdAt}#${record.backupId}`,
        ...record,
      },
      cond.notExists(),
    );
  }

  async getBackup(projectId: string, backupId: string): Promise<BackupRecord | undefined> {
    const item = await this.table.get(backupKey(projectId, backupId));
    return item ? fromItem<BackupRecord>(item) : undefined;
  }

  async updateBackup(projectId: string, backupId: string, patch: Partial<BackupRecord>, expectStatus?: BackupStatus[]): Promise<BackupRecord> {
    const { projectId: _p, backupId: _b, ...fields } = { ...patch, updatedAt: patch.updatedAt ?? new Date().toISOString() };
    const condition = expectStatus?.length ? cond.and(cond.exists(), cond.in('status', expectStatus)) : cond.exists();
    try {
      return fromItem<BackupRecord>(await this.table.update(backupKey(projectId, backupId), { set: fields }, condition));
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
      throw new BackupStateError(
        expectStatus?.length ? `backup ${backupId} is missing or not in status ${expectStatus.join('/')}` : `backup ${backupId} not found`,
      );
    }
  }

  async latestBackup(projectId: string, volumeId: string, status: BackupStatus, domainId?: string): Promise<BackupRecord | undefined> {
    const newestFirst = queryAll(this.table, { index: 'gsi1', partition: volumeBackupsKey(projectId, volumeId), descending: true });
    for await (const item of newestFirst) {
      if (item.status === status && (!domainId || item.domainId === domainId)) return fromItem<BackupRecord>(item);
    }
    return undefined;
  }

  async listBackups(projectId: string, options: { volumeId?: string } = {}): Promise<BackupRecord[]> {
    const items = options.volumeId
      ? queryAll(this.table, { index: 'gsi1', partition: volumeBackupsKey(projectId, options.volumeId) })
      : queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: backupSortKey('') } });
    const out: BackupRecord[] = [];
    for await (const item of items) out.push(fromItem<BackupRecord>(item));
    return out;
  }

  async getDomain(projectId: string, kmsKeyId: string): Promise<KeyDomainRecord | undefined> {
    const item = await this.table.get(domainKey(projectId, kmsKeyId));
    return item ? fromItem<KeyDomainRecord>(item) : undefined;
  }

  async putDomainIfAbsent(record: KeyDomainRecord): Promise<KeyDomainRecord> {
    try {
      // In the index of every domain, so garbage collection finds them all (gc-queue.ts).
      const listed = { [CATALOG_GSI1.partitionKey]: ALL_DOMAINS_KEY, [CATALOG_GSI1.sortKey]: `${record.projectId}#${record.domainId}` };
      await this.table.put({ ...domainKey(record.projectId, record.kmsKeyId), ...listed, ...record }, cond.notExists());
      return record;
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
      const existing = await this.getDomain(record.projectId, record.kmsKeyId);
      if (!existing) throw err;
      return existing;
    }
  }

  async recordSegment(projectId: string, backupId: string, segment: number, stats: BackupStats): Promise<void> {
    await this.table.put({ pk: projectKey(projectId), sk: segmentSortKey(backupId, segment), segment, stats });
  }

  async segmentStats(projectId: string, backupId: string): Promise<Array<{ segment: number; stats: BackupStats }>> {
    const out: Array<{ segment: number; stats: BackupStats }> = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: segmentSortKey(backupId) } })) {
      out.push({ segment: Number(item.segment), stats: item.stats as BackupStats });
    }
    return out;
  }
}

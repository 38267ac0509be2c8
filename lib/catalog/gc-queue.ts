// Deleting a backup: the catalog item goes and a GC queue entry comes, in one transaction, so a deleted
// backup no longer lists and its chunks are never forgotten. The collector (lib/engine/gc.ts) drains the
// queue: it removes a queued backup's manifests once no `creating` backup names it as parent, then the entry;
// chunks that no backup references any more go in its sweep, with time margins.
//
// queue item: pk "GCQ"  sk "<deletedAt ISO>#<project>#<backupId>"  { projectId, backupId, domainId, kmsKeyId, manifestPrefix, segmentCount, deletedAt }
//
// The collector's own items, kept between runs:
//   lease        pk "GC"              sk "LEASE"          { owner, until }   one collector at a time
//   unnamed pack pk "GCPACK#<domain>" sk "<pack key>"     { since }          a pack no index entry named at `since`
// It finds every key domain through gsi1: domain items carry gsi1pk "DOMAINS" / gsi1sk "<project>#<domain>"
// (backups.ts writes them); the domains of every project the queue names are added, for domains older than that.
import type { BackupRecord, KeyDomainRecord } from '../engine/ports.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table } from './table.ts';
import { ALL_DOMAINS_KEY, GC_QUEUE_KEY, backupSortKey, domainSortKey, fromItem, projectKey } from './tables.ts';

const LEASE_KEY = { pk: 'GC', sk: 'LEASE' };
const unnamedPartition = (domainId: string) => `GCPACK#${domainId}`;

export interface GcQueueEntry {
  projectId: string;
  backupId: string;
  domainId: string;
  /** The domain's master key (absent on entries queued before GC existed). */
  kmsKeyId?: string;
  manifestPrefix: string;
  segmentCount: number;
  deletedAt: string;
}

export interface GcQueue {
  /** Removes a `deleting` backup from the catalog and queues it for GC. False when it is not `deleting`. */
  removeBackupAndQueue(backup: BackupRecord): Promise<boolean>;
  /** The queue, oldest deletion first. */
  list(): Promise<GcQueueEntry[]>;
  /** Removes an entry (the collector, once the backup's manifests are gone). */
  remove(entry: GcQueueEntry): Promise<void>;
  /** Takes the collector's lease until `until` (epoch ms); false while another run holds an unexpired one. */
  acquireLease(owner: string, now: number, until: number): Promise<boolean>;
  releaseLease(owner: string): Promise<void>;
  /** Every key domain: those in the domains index, and those of `projects` (the queue's). */
  domains(projects: Iterable<string>): Promise<KeyDomainRecord[]>;
  /** The domain's packs a run found named by no index entry, with the time of the first such run. */
  unnamedPacks(domainId: string): Promise<Map<string, number>>;
  noteUnnamed(domainId: string, packKey: string, since: number): Promise<void>;
  forgetUnnamed(domainId: string, packKey: string): Promise<void>;
}

const entryKey = (e: GcQueueEntry) => ({ pk: GC_QUEUE_KEY, sk: `${e.deletedAt}#${e.projectId}#${e.backupId}` });

export class TableGcQueue implements GcQueue {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async removeBackupAndQueue(backup: BackupRecord): Promise<boolean> {
    const entry: GcQueueEntry = {
      projectId: backup.projectId,
      backupId: backup.backupId,
      domainId: backup.domainId,
      kmsKeyId: backup.kmsKeyId,
      manifestPrefix: backup.manifestPrefix,
      segmentCount: backup.segmentCount,
      deletedAt: new Date().toISOString(),
    };
    try {
      await this.table.transact([
        { delete: { pk: projectKey(backup.projectId), sk: backupSortKey(backup.backupId) }, if: cond.eq('status', 'deleting') },
        { put: { ...entryKey(entry), ...entry } },
      ]);
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async list(): Promise<GcQueueEntry[]> {
    const out: GcQueueEntry[] = [];
    for await (const item of queryAll(this.table, { partition: GC_QUEUE_KEY })) out.push(fromItem<GcQueueEntry>(item));
    return out;
  }

  async remove(entry: GcQueueEntry): Promise<void> {
    await this.table.delete(entryKey(entry));
  }

  /** Takes the collector's lease until `until` (epoch ms); false while another run holds an unexpired one. */
  async acquireLease(owner: string, now: number, until: number): Promise<boolean> {
    const held = await this.table.get(LEASE_KEY);
    try {
      if (!held) await this.table.put({ ...LEASE_KEY, owner, until }, cond.notExists());
      else if (held.owner === owner || Number(held.until) <= now) await this.table.put({ ...LEASE_KEY, owner, until }, cond.and(cond.exists(), cond.eq('until', held.until), cond.eq('owner', held.owner)));
      else return false;
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async releaseLease(owner: string): Promise<void> {
    try {
      await this.table.delete(LEASE_KEY, cond.eq('owner', owner));
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
    }
  }

  /** Every key domain: those registered in the domains index, and those of `projects` (queued deletions). */
  async domains(projects: Iterable<string>): Promise<KeyDomainRecord[]> {
    const found = new Map<string, KeyDomainRecord>();
    for await (const item of queryAll(this.table, { index: 'gsi1', partition: ALL_DOMAINS_KEY })) {
      const d = fromItem<KeyDomainRecord>(item);
      found.set(d.domainId, d);
    }
    for (const projectId of new Set(projects)) {
      for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: domainSortKey('') } })) {
        const d = fromItem<KeyDomainRecord>(item);
        found.set(d.domainId, d);
      }
    }
    return [...found.values()];
  }

  async unnamedPacks(domainId: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for await (const item of queryAll(this.table, { partition: unnamedPartition(domainId) })) out.set(String(item.sk), Number(item.since));
    return out;
  }

  async noteUnnamed(domainId: string, packKey: string, since: number): Promise<void> {
    await this.table.put({ pk: unnamedPartition(domainId), sk: packKey, since });
  }

  async forgetUnnamed(domainId: string, packKey: string): Promise<void> {
    await this.table.delete({ pk: unnamedPartition(domainId), sk: packKey });
  }
}

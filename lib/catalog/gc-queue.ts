// Deleting a backup: the catalog item goes and a GC queue entry comes, in one transaction, so a deleted
// backup no longer lists and its chunks are never forgotten. The mark-and-sweep GC (policies issue)
// drains the queue: it removes the backup's manifests and sweeps chunks that no committed manifest
// references any more, with time margins. Nothing a live backup references is deleted here.
//
// queue item: pk "GCQ"  sk "<deletedAt ISO>#<project>#<backupId>"  { projectId, backupId, domainId, manifestPrefix, segmentCount, deletedAt }
import type { BackupRecord } from '../engine/ports.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table } from './table.ts';
import { GC_QUEUE_KEY, backupSortKey, fromItem, projectKey } from './tables.ts';

export interface GcQueueEntry {
  projectId: string;
  backupId: string;
  domainId: string;
  manifestPrefix: string;
  segmentCount: number;
  deletedAt: string;
}

export interface GcQueue {
  /** Removes a `deleting` backup from the catalog and queues it for GC. False when it is not `deleting`. */
  removeBackupAndQueue(backup: BackupRecord): Promise<boolean>;
  /** The queue, oldest deletion first. */
  list(): Promise<GcQueueEntry[]>;
}

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
      manifestPrefix: backup.manifestPrefix,
      segmentCount: backup.segmentCount,
      deletedAt: new Date().toISOString(),
    };
    try {
      await this.table.transact([
        { delete: { pk: projectKey(backup.projectId), sk: backupSortKey(backup.backupId) }, if: cond.eq('status', 'deleting') },
        { put: { pk: GC_QUEUE_KEY, sk: `${entry.deletedAt}#${backup.projectId}#${backup.backupId}`, ...entry } },
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
}

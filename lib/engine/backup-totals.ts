// A backup's statistics from its segments' records in the catalog: what commit publishes. Reads no manifest.
import type { EngineDeps } from './engine.ts';
import { EngineStateError } from './errors.ts';
import { addStats, emptyStats } from './manifest.ts';
import type { BackupRecord, BackupStats } from './ports.ts';

/** Sums the records of every segment of `rec`; fails naming the first segment without one. */
export async function backupTotals(deps: EngineDeps, rec: BackupRecord): Promise<BackupStats> {
  const stats = emptyStats();
  const finished = new Set<number>();
  for (const { segment, stats: segmentStats } of await deps.catalog.segmentStats(rec.projectId, rec.backupId)) {
    if (segment < 0 || segment >= rec.segmentCount || finished.has(segment)) continue;
    finished.add(segment);
    addStats(stats, segmentStats);
  }
  for (let segment = 0; segment < rec.segmentCount; segment++) {
    if (!finished.has(segment)) throw new EngineStateError(`backup ${rec.backupId}: segment ${segment} was not backed up`);
  }
  return stats;
}

// What garbage collection needs of the chunk index beyond lookups and records (docs/format.md, "Garbage
// collection"): a scan of one domain's entries, and conditional writes that each hold only if the entry is
// as the collector saw it, so a concurrent writer's record always wins over the collector.
import type { ChunkLocation } from './ports.ts';

/** One chunk index entry as a scan returns it. */
export interface IndexEntry {
  /** Chunk id, 64 lowercase hex digits. */
  id: string;
  pack: string;
  offset: number;
  length: number;
  /** Epoch ms of the GC run that found it unreferenced (absent: not marked). */
  mark?: number;
}

/** An id range of a scan: ids `>= from` and `< to` (hex strings; absent bound: open). */
export interface IdRange {
  from?: string;
  to?: string;
}

export interface IndexMaintenance {
  /** The domain's entries, page by page (any order, every entry once), limited to `range` when given. */
  scanDomain(domainId: string, range?: IdRange): AsyncIterable<IndexEntry[]>;
  /** Marks each entry with `mark` where it is unmarked and still at `location`; returns how many were marked. */
  markEntries(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>, mark: number): Promise<number>;
  /** Removes the mark of each entry still marked with exactly that mark; returns how many. */
  unmarkEntries(domainId: string, entries: Array<{ id: string; mark: number }>): Promise<number>;
  /** Deletes each entry still marked with exactly that mark (a record since then removed it); returns how many. */
  deleteEntries(domainId: string, entries: Array<{ id: string; mark: number }>): Promise<number>;
  /** Points each entry still at `from` to `to`, leaving its mark as it is; returns how many moved. */
  moveEntries(domainId: string, moves: Array<{ id: string; from: ChunkLocation; to: ChunkLocation }>): Promise<number>;
}

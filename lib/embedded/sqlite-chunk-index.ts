// ChunkIndex on SQLite (node:sqlite), for the embedded backend.
//
// One WITHOUT ROWID table keyed (domain, id): pack (object key), off, len, at (epoch ms first written),
// mark (set by GC on an unreferenced entry, cleared by any record), the same attributes as the DynamoDB items. Lookups run in batches through one prepared statement with a
// fixed number of placeholders (a short batch repeats its first id); writes go in transactions of bounded
// size. Between batches the event loop gets a turn, so a large lookup does not stall other requests.
//
// synchronous=FULL: restores find chunks only through this index (nothing rebuilds it from pack headers
// yet), so an entry of a committed backup must survive a power loss. It costs one WAL fsync per record()
// call, i.e. per pack of ~16 MiB.
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { IdRange, IndexEntry, IndexMaintenance } from '../engine/gc-index.ts';
import type { ChunkIndex, ChunkLocation } from '../engine/ports.ts';
import { chunked } from '../util/concurrency.ts';

const BUSY_TIMEOUT_MS = 10_000;
const LOOKUP_BATCH = 500;
const RECORD_BATCH = 5_000;
const SCAN_PAGE = 5_000;

interface Row {
  id: string;
  pack: string;
  off: number;
  len: number;
  mark: number | null;
}

export class SqliteChunkIndex implements ChunkIndex, IndexMaintenance {
  private readonly db: DatabaseSync;
  private readonly lookupBatch: StatementSync;
  private readonly insert: StatementSync;

  /** `path`: the database file (created when absent), or ':memory:'. */
  constructor(path: string) {
    this.db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = FULL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS chunks (domain TEXT NOT NULL, id TEXT NOT NULL, pack TEXT NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL, at INTEGER NOT NULL, mark INTEGER, PRIMARY KEY (domain, id)) WITHOUT ROWID',
    );
    // An index written before GC existed has no mark column yet.
    const columns = this.db.prepare('PRAGMA table_info(chunks)').all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'mark')) this.db.exec('ALTER TABLE chunks ADD COLUMN mark INTEGER');
    const placeholders = Array.from({ length: LOOKUP_BATCH }, () => '?').join(', ');
    this.lookupBatch = this.db.prepare(`SELECT id, pack, off, len, mark FROM chunks WHERE domain = ? AND id IN (${placeholders})`);
    this.insert = this.db.prepare('INSERT OR REPLACE INTO chunks (domain, id, pack, off, len, at) VALUES (?, ?, ?, ?, ?, ?)');
  }

  close(): void {
    this.db.close();
  }

  async lookup(domainId: string, ids: string[]): Promise<Map<string, ChunkLocation>> {
    const found = new Map<string, ChunkLocation>();
    const batches = chunked([...new Set(ids)], LOOKUP_BATCH);
    for (const [i, batch] of batches.entries()) {
      if (i > 0) await nextTurn();
      const params = Array.from({ length: LOOKUP_BATCH }, (_, j) => batch[j] ?? batch[0]!);
      for (const row of this.lookupBatch.all(domainId, ...params) as unknown as Row[]) {
        found.set(row.id, { pack: row.pack, offset: row.off, length: row.len, ...(row.mark !== null ? { marked: row.mark } : {}) });
      }
    }
    return found;
  }

  async record(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>): Promise<void> {
    const now = Date.now();
    for (const [i, batch] of chunked(entries, RECORD_BATCH).entries()) {
      if (i > 0) await nextTurn();
      this.db.exec('BEGIN IMMEDIATE');
      try {
        for (const { id, location } of batch) this.insert.run(domainId, id, location.pack, location.offset, location.length, now);
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    }
  }

  async *scanDomain(domainId: string, range: IdRange = {}): AsyncIterable<IndexEntry[]> {
    // Keyset paging in id order: each page is one short read, so writers are never held for a whole scan.
    const columns = 'SELECT id, pack, off, len, mark FROM chunks WHERE domain = ?';
    const firstPage = this.db.prepare(`${columns} AND id >= ? AND id < ? ORDER BY id LIMIT ?`);
    const nextPage = this.db.prepare(`${columns} AND id > ? AND id < ? ORDER BY id LIMIT ?`);
    const to = range.to ?? 'g'; // above every hex id
    let rows = firstPage.all(domainId, range.from ?? '', to, SCAN_PAGE) as unknown as Row[];
    while (rows.length) {
      yield rows.map((r) => ({ id: r.id, pack: r.pack, offset: r.off, length: r.len, ...(r.mark !== null ? { mark: r.mark } : {}) }));
      await nextTurn();
      rows = nextPage.all(domainId, rows.at(-1)!.id, to, SCAN_PAGE) as unknown as Row[];
    }
  }

  async markEntries(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>, mark: number): Promise<number> {
    const stmt = this.db.prepare('UPDATE chunks SET mark = ? WHERE domain = ? AND id = ? AND mark IS NULL AND pack = ? AND off = ?');
    return this.inTransactions(entries, (e) => Number(stmt.run(mark, domainId, e.id, e.location.pack, e.location.offset).changes));
  }

  async unmarkEntries(domainId: string, entries: Array<{ id: string; mark: number }>): Promise<number> {
    const stmt = this.db.prepare('UPDATE chunks SET mark = NULL WHERE domain = ? AND id = ? AND mark = ?');
    return this.inTransactions(entries, (e) => Number(stmt.run(domainId, e.id, e.mark).changes));
  }

  async deleteEntries(domainId: string, entries: Array<{ id: string; mark: number }>): Promise<number> {
    const stmt = this.db.prepare('DELETE FROM chunks WHERE domain = ? AND id = ? AND mark = ?');
    return this.inTransactions(entries, (e) => Number(stmt.run(domainId, e.id, e.mark).changes));
  }

  async moveEntries(domainId: string, moves: Array<{ id: string; from: ChunkLocation; to: ChunkLocation }>): Promise<number> {
    const stmt = this.db.prepare('UPDATE chunks SET pack = ?, off = ?, len = ? WHERE domain = ? AND id = ? AND pack = ? AND off = ?');
    return this.inTransactions(moves, (m) => Number(stmt.run(m.to.pack, m.to.offset, m.to.length, domainId, m.id, m.from.pack, m.from.offset).changes));
  }

  /** Runs `write` for every item, in transactions of bounded size; sums what it returns. */
  private async inTransactions<T>(items: T[], write: (item: T) => number): Promise<number> {
    let changed = 0;
    for (const [i, batch] of chunked(items, RECORD_BATCH).entries()) {
      if (i > 0) await nextTurn();
      this.db.exec('BEGIN IMMEDIATE');
      try {
        for (const item of batch) changed += write(item);
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    }
    return changed;
  }
}

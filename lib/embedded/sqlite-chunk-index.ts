// ChunkIndex on SQLite (node:sqlite), for the embedded backend.
//
// One WITHOUT ROWID table keyed (domain, id): pack (object key), off, len, at (epoch ms first written),
// the same attributes as the DynamoDB items. Lookups run in batches through one prepared statement with a
// fixed number of placeholders (a short batch repeats its first id); writes go in transactions of bounded
// size. Between batches the event loop gets a turn, so a large lookup does not stall other requests.
//
// synchronous=FULL: restores find chunks only through this index (nothing rebuilds it from pack headers
// yet), so an entry of a committed backup must survive a power loss. It costs one WAL fsync per record()
// call, i.e. per pack of ~16 MiB.
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ChunkIndex, ChunkLocation } from '../engine/ports.ts';
import { chunked } from '../util/concurrency.ts';

const BUSY_TIMEOUT_MS = 10_000;
const LOOKUP_BATCH = 500;
const RECORD_BATCH = 5_000;

interface Row {
  id: string;
  pack: string;
  off: number;
  len: number;
}

export class SqliteChunkIndex implements ChunkIndex {
  private readonly db: DatabaseSync;
  private readonly lookupBatch: StatementSync;
  private readonly insert: StatementSync;

  /** `path`: the database file (created when absent), or ':memory:'. */
  constructor(path: string) {
    this.db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = FULL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS chunks (domain TEXT NOT NULL, id TEXT NOT NULL, pack TEXT NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (domain, id)) WITHOUT ROWID',
    );
    const placeholders = Array.from({ length: LOOKUP_BATCH }, () => '?').join(', ');
    this.lookupBatch = this.db.prepare(`SELECT id, pack, off, len FROM chunks WHERE domain = ? AND id IN (${placeholders})`);
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
        found.set(row.id, { pack: row.pack, offset: row.off, length: row.len });
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
}

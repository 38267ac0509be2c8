// The ChunkIndex port's contract, run against DynamoDB (on the emulator) and SQLite.
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteChunkIndex } from '../../lib/embedded/sqlite-chunk-index.ts';
import type { ChunkIndex, ChunkLocation } from '../../lib/engine/ports.ts';
import { CHUNK_INDEX_ADAPTERS, tempDir } from './adapters.ts';
import type { Opened } from './adapters.ts';

const chunkId = (seed: string) => createHash('sha256').update(seed).digest('hex');
const newDomain = () => `dom-${randomUUID()}`;

function entries(domain: string, count: number, pack = `packs/${domain}/p1`) {
  return Array.from({ length: count }, (_, i) => ({ id: chunkId(`${domain}/${i}`), location: { pack, offset: i * 4096, length: 4000 + i } }));
}

describe.each(CHUNK_INDEX_ADAPTERS)('chunk index contract: $name', (adapter) => {
  let opened: Opened<ChunkIndex>;
  let index: ChunkIndex;

  beforeAll(async () => {
    opened = await adapter.open();
    index = opened.subject;
  });
  afterAll(async () => {
    await opened?.close();
  });

  it('finds recorded chunks, more than one batch of them, and leaves unknown ids out', async () => {
    const domain = newDomain();
    const recorded = entries(domain, 260);
    await index.record(domain, recorded);
    const unknown = Array.from({ length: 40 }, (_, i) => chunkId(`unknown/${i}`));
    const found = await index.lookup(domain, [...recorded.map((e) => e.id), ...unknown]);
    expect(found.size).toBe(recorded.length);
    for (const e of recorded) expect(found.get(e.id)).toEqual(e.location);
    for (const id of unknown) expect(found.has(id)).toBe(false);
  });

  it('answers duplicate ids once, and an empty lookup with nothing', async () => {
    const domain = newDomain();
    const recorded = entries(domain, 3);
    await index.record(domain, recorded);
    const ids = recorded.map((e) => e.id);
    const found = await index.lookup(domain, [ids[0]!, ids[0]!, ids[1]!, ids[0]!, ids[2]!, ids[1]!]);
    expect([...found.keys()].sort()).toEqual([...ids].sort());
    expect((await index.lookup(domain, [])).size).toBe(0);
    await index.record(domain, []);
  });

  it('keeps key domains apart', async () => {
    const [a, b] = [newDomain(), newDomain()];
    const id = chunkId('shared content');
    const inA: ChunkLocation = { pack: `packs/${a}/p`, offset: 0, length: 10 };
    await index.record(a, [{ id, location: inA }]);
    expect((await index.lookup(b, [id])).size).toBe(0);
    const inB: ChunkLocation = { pack: `packs/${b}/p`, offset: 100, length: 20 };
    await index.record(b, [{ id, location: inB }]);
    expect((await index.lookup(a, [id])).get(id)).toEqual(inA);
    expect((await index.lookup(b, [id])).get(id)).toEqual(inB);
  });

  it('records a chunk again with its latest location', async () => {
    const domain = newDomain();
    const id = chunkId('again');
    await index.record(domain, [{ id, location: { pack: 'packs/old', offset: 1, length: 2 } }]);
    await index.record(domain, [{ id, location: { pack: 'packs/new', offset: 3, length: 4 } }]);
    expect((await index.lookup(domain, [id])).get(id)).toEqual({ pack: 'packs/new', offset: 3, length: 4 });
  });
});

describe('SqliteChunkIndex on a file', () => {
  it('keeps its entries across close and reopen', async () => {
    const dir = await tempDir();
    try {
      const domain = newDomain();
      const recorded = entries(domain, 1200);
      const first = new SqliteChunkIndex(dir.path('chunks.db'));
      await first.record(domain, recorded);
      first.close();
      const second = new SqliteChunkIndex(dir.path('chunks.db'));
      const found = await second.lookup(domain, recorded.map((e) => e.id));
      expect(found.size).toBe(recorded.length);
      expect(found.get(recorded[1199]!.id)).toEqual(recorded[1199]!.location);
      second.close();
    } finally {
      await dir.remove();
    }
  });
});

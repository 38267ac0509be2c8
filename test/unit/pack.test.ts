// Pack objects: build, store in an in-memory object store, read the header back; tampering is detected.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkIntegrityError, SEAL_OVERHEAD, chunkId, deriveDomainKeys, openChunk, sealChunk } from '../../lib/engine/chunk-codec.ts';
import { PACK_MAGIC, buildPack, newPackKey, readPackHeader } from '../../lib/engine/pack.ts';
import { ObjectNotFoundError } from '../../lib/engine/ports.ts';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { expectSameBytes } from './bytes.ts';

/** ObjectStore in memory, with the same not-found and range semantics as the S3 adapter. */
class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  gets = 0;

  async put(key: string, body: Uint8Array): Promise<void> {
    this.objects.set(key, Buffer.from(body));
  }

  async get(key: string): Promise<Buffer> {
    this.gets++;
    const obj = this.objects.get(key);
    if (!obj) throw new ObjectNotFoundError(key);
    return Buffer.from(obj);
  }

  async getRange(key: string, start: number, length: number): Promise<Buffer> {
    const obj = await this.get(key);
    if (start < 0 || start + length > obj.length) throw new Error(`range ${start}+${length} outside ${key} (${obj.length} bytes)`);
    return obj.subarray(start, start + length);
  }

  async exists(key: string): Promise<boolean> {
    return this.objects.has(key);
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    for (const [key, body] of [...this.objects].sort(([a], [b]) => a.localeCompare(b))) {
      if (key.startsWith(prefix)) yield { key, size: body.length };
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }
}

const DOMAIN = 'd-pack';
const keys = deriveDomainKeys(randomBytes(32), DOMAIN);

function sealed(plain: Buffer) {
  const id = chunkId(keys, plain);
  const out = Buffer.alloc(plain.length + SEAL_OVERHEAD);
  const len = sealChunk(keys, id, plain, out, 0);
  return { id, plain, sealed: out.subarray(0, len) };
}

function someChunks() {
  return [
    sealed(Buffer.from('pack header test '.repeat(3000))),
    sealed(randomBytes(40_000)),
    sealed(Buffer.from([1])),
    sealed(Buffer.from('another compressible chunk '.repeat(500))),
  ];
}

async function storedPack(store: MemoryStore) {
  const chunks = someChunks();
  const key = newPackKey(DOMAIN);
  const { body, entries } = buildPack(keys, key, chunks.map(({ id, sealed }) => ({ id, sealed })));
  await store.put(key, body);
  return { chunks, key, body, entries };
}

describe('packs', () => {
  it('names packs under their domain with a random id', () => {
    const a = newPackKey(DOMAIN);
    expect(a).toMatch(/^packs\/d-pack\/[0-9a-f]{2}\/[0-9a-f]{32}$/);
    expect(a.split('/')[2]).toBe(a.split('/')[3]!.slice(0, 2));
    expect(newPackKey(DOMAIN)).not.toBe(a);
  });

  it('round-trips: the header read back from the store lists every chunk where buildPack put it', async () => {
    const store = new MemoryStore();
    const { chunks, key, body, entries } = await storedPack(store);
    expect(body.subarray(body.length - PACK_MAGIC.length)).toEqual(PACK_MAGIC);
    let at = 0;
    entries.forEach((e, i) => {
      expect(e.id).toEqual(chunks[i]!.id);
      expect(e.offset).toBe(at);
      expect(e.length).toBe(chunks[i]!.sealed.length);
      at += e.length;
    });
    const header = await readPackHeader(store, keys, key, body.length);
    expect(header).toEqual(entries);
    // every chunk opens from a ranged read at the offset the header names
    for (const [i, e] of header.entries()) {
      const blob = await store.getRange(key, e.offset, e.length);
      expectSameBytes(openChunk(keys, e.id, blob), chunks[i]!.plain);
    }
  });

  it('builds an empty pack whose header lists nothing', async () => {
    const store = new MemoryStore();
    const key = newPackKey(DOMAIN);
    const { body, entries } = buildPack(keys, key, []);
    await store.put(key, body);
    expect(entries).toEqual([]);
    expect(await readPackHeader(store, keys, key, body.length)).toEqual([]);
  });

  /** Where the sealed header lies in the pack body: [start, end). */
  function headerSpan(body: Buffer, entries: Array<{ offset: number; length: number }>) {
    const last = entries[entries.length - 1]!;
    return { start: last.offset + last.length, end: body.length - 4 - PACK_MAGIC.length };
  }

  it('fails when any byte of the sealed header is flipped, its flags byte included', async () => {
    const store = new MemoryStore();
    const { key, body, entries } = await storedPack(store);
    const span = headerSpan(body, entries);
    expect(body.readUInt32LE(span.end)).toBe(span.end - span.start);
    for (let i = span.start; i < span.end; i++) {
      const bad = Buffer.from(body);
      bad[i] = bad[i]! ^ 0x10;
      await store.put(key, bad);
      await expect(readPackHeader(store, keys, key, bad.length), `byte ${i}`).rejects.toThrow(ChunkIntegrityError);
    }
  });

  it('fails on a truncated header length in the trailer', async () => {
    const store = new MemoryStore();
    const { key, body } = await storedPack(store);
    const bad = Buffer.from(body);
    bad.writeUInt32LE(bad.readUInt32LE(bad.length - 12) - 1, bad.length - 12);
    await store.put(key, bad);
    await expect(readPackHeader(store, keys, key, bad.length)).rejects.toThrow(ChunkIntegrityError);
  });

  it('fails on a wrong magic, a header bound to another pack key, or another domain key', async () => {
    const store = new MemoryStore();
    const { key, body } = await storedPack(store);
    const badMagic = Buffer.from(body);
    badMagic[badMagic.length - 1] = 0x30;
    await store.put('packs/x/bad-magic', badMagic);
    await expect(readPackHeader(store, keys, 'packs/x/bad-magic', badMagic.length)).rejects.toThrow(/not an OpenVBS pack/);

    const moved = newPackKey(DOMAIN);
    await store.put(moved, body);
    await expect(readPackHeader(store, keys, moved, body.length)).rejects.toThrow(ChunkIntegrityError);

    const foreign = deriveDomainKeys(randomBytes(32), DOMAIN);
    await expect(readPackHeader(store, foreign, key, body.length)).rejects.toThrow(ChunkIntegrityError);
  });

  it('fails when the pack is missing', async () => {
    const store = new MemoryStore();
    await expect(readPackHeader(store, keys, 'packs/none', 1000)).rejects.toThrow(ObjectNotFoundError);
  });
});

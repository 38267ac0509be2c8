// Pack objects: build, store in an in-memory object store, read the header back; tampering is detected.
import { randomBytes } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { ChunkIntegrityError, SEAL_OVERHEAD, chunkId, deriveDomainKeys, openChunk, sealChunk } from '../../lib/engine/chunk-codec.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { Slot } from '../../lib/engine/chunk-pool.ts';
import { PACK_MAGIC, finishPack, newPackKey, readPackHeader } from '../../lib/engine/pack.ts';
import type { PackEntry } from '../../lib/engine/pack.ts';
import { PackWriter } from '../../lib/engine/pack-writer.ts';
import { ObjectNotFoundError } from '../../lib/engine/ports.ts';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { MemoryChunkIndex, MemoryObjectStore } from '../support/memory-ports.ts';
import { expectSameBytes } from './bytes.ts';

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

/** Lays the sealed chunks out back to back at the start of a buffer with `room` spare bytes, as PackWriter does. */
function laidOut(chunks: Array<{ id: Buffer; sealed: Buffer }>, room: number) {
  const dataBytes = chunks.reduce((a, c) => a + c.sealed.length, 0);
  const data = Buffer.alloc(dataBytes + room, 0xee);
  const entries: PackEntry[] = [];
  let at = 0;
  for (const c of chunks) {
    c.sealed.copy(data, at);
    entries.push({ id: c.id, offset: at, length: c.sealed.length });
    at += c.sealed.length;
  }
  return { data, dataBytes, entries };
}

async function storedPack(store: MemoryObjectStore, room = 64 * 1024) {
  const chunks = someChunks();
  const key = newPackKey(DOMAIN);
  const { data, dataBytes, entries } = laidOut(chunks, room);
  const body = finishPack(keys, key, data, dataBytes, entries);
  await store.put(key, body);
  return { chunks, key, body, entries, data, dataBytes };
}

describe('packs', () => {
  it('names packs under their domain with a random id', () => {
    const a = newPackKey(DOMAIN);
    expect(a).toMatch(/^packs\/d-pack\/[0-9a-f]{2}\/[0-9a-f]{32}$/);
    expect(a.split('/')[2]).toBe(a.split('/')[3]!.slice(0, 2));
    expect(newPackKey(DOMAIN)).not.toBe(a);
  });

  it.each([
    ['in place, when the buffer has room for header and trailer', 64 * 1024, true],
    ['in a new buffer, when the header does not fit', 0, false],
    ['in a new buffer, when the room is one byte short', -1, false],
  ] as const)('round-trips %s: the header read back lists every chunk where it lies', async (_how, room, inPlace) => {
    const store = new MemoryObjectStore();
    const chunks = someChunks();
    const key = newPackKey(DOMAIN);
    const probe = laidOut(chunks, 64 * 1024);
    const exact = finishPack(keys, newPackKey(DOMAIN), probe.data, probe.dataBytes, probe.entries).length - probe.dataBytes;
    // room -1: one byte less than header + trailer need; 0: no room at all
    const { data, dataBytes, entries } = laidOut(chunks, room === -1 ? exact - 1 : room);
    const before = Buffer.from(data);
    const body = finishPack(keys, key, data, dataBytes, entries);
    expect(body.buffer === data.buffer).toBe(inPlace);
    if (inPlace) expect(body.byteOffset).toBe(data.byteOffset);
    else expect(data).toEqual(before); // the caller's buffer is left as it was
    expect(body.length).toBe(dataBytes + exact); // header sealed with a fresh nonce, same size
    expect(body.subarray(body.length - PACK_MAGIC.length)).toEqual(PACK_MAGIC);
    expect(body.subarray(0, dataBytes)).toEqual(before.subarray(0, dataBytes)); // chunks where they were laid out
    await store.put(key, body);

    const header = await readPackHeader(store, keys, key, body.length);
    expect(header).toEqual(entries);
    let at = 0;
    header.forEach((e, i) => {
      expect(e.id).toEqual(chunks[i]!.id);
      expect(e.offset).toBe(at);
      expect(e.length).toBe(chunks[i]!.sealed.length);
      at += e.length;
    });
    // every chunk opens from a ranged read at the offset the header names
    for (const [i, e] of header.entries()) {
      const blob = await store.getRange(key, e.offset, e.length);
      expectSameBytes(openChunk(keys, e.id, blob), chunks[i]!.plain);
    }
  });

  it('finishes an empty pack whose header lists nothing, in place or not', async () => {
    const store = new MemoryObjectStore();
    for (const room of [0, 4096]) {
      const key = newPackKey(DOMAIN);
      const body = finishPack(keys, key, Buffer.alloc(room), 0, []);
      await store.put(key, body);
      expect(await readPackHeader(store, keys, key, body.length)).toEqual([]);
    }
  });

  /** Where the sealed header lies in the pack body: [start, end). */
  function headerSpan(body: Buffer, entries: PackEntry[]) {
    const last = entries[entries.length - 1]!;
    return { start: last.offset + last.length, end: body.length - 4 - PACK_MAGIC.length };
  }

  it('fails when any byte of the sealed header is flipped, its flags byte included', async () => {
    const store = new MemoryObjectStore();
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
    const store = new MemoryObjectStore();
    const { key, body } = await storedPack(store);
    const bad = Buffer.from(body);
    bad.writeUInt32LE(bad.readUInt32LE(bad.length - 12) - 1, bad.length - 12);
    await store.put(key, bad);
    await expect(readPackHeader(store, keys, key, bad.length)).rejects.toThrow(ChunkIntegrityError);
  });

  it('fails on a wrong magic, a header bound to another pack key, or another domain key', async () => {
    const store = new MemoryObjectStore();
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
    const store = new MemoryObjectStore();
    await expect(readPackHeader(store, keys, 'packs/none', 1000)).rejects.toThrow(ObjectNotFoundError);
  });
});

describe('PackWriter', () => {
  it('copies each chunk on add, so the caller may reuse its buffer at once, and reuses pack bodies safely', async () => {
    const store = new MemoryObjectStore();
    const index = new MemoryChunkIndex();
    const domain = { projectId: 'p', domainId: DOMAIN, kmsKeyId: 'k', keys };
    const maxChunk = 40_000 + SEAL_OVERHEAD;
    const bodies = new Set<ArrayBufferLike>();
    const watched: ObjectStore = Object.assign(Object.create(store) as MemoryObjectStore, {
      put: (key: string, body: Uint8Array) => {
        bodies.add(body.buffer);
        return store.put(key, body); // copies, as S3 does by sending it
      },
    });
    const pool = new ChunkPool({ workers: 0 });
    let held = 0;
    const bodySlots = { acquire: (n: number) => (held++, pool.acquire(n)), release: (slot: Slot) => (held--, pool.release(slot)) };
    const packs = new PackWriter(watched, index, domain, bodySlots, 50_000, maxChunk, 1);
    const scratch = Buffer.alloc(maxChunk); // one buffer for every sealed chunk, like a pool slot
    const plains: Buffer[] = [];
    for (let i = 0; i < 24; i++) {
      const plain = i % 3 === 0 ? randomBytes(40_000) : Buffer.from(`chunk ${i} `.repeat(500 + 300 * i));
      const id = chunkId(keys, plain);
      const len = sealChunk(keys, id, plain, scratch, 0);
      packs.add(id, scratch.subarray(0, len));
      scratch.fill(0xaa); // overwritten before the pack is uploaded
      plains.push(plain);
      await setImmediate(); // let uploads finish, so later packs reuse earlier bodies
      await packs.backpressure();
    }
    await packs.finish();
    expect(packs.packsWritten).toBeGreaterThan(4);
    expect(bodies.size).toBeLessThan(packs.packsWritten); // pack bodies were reused
    expect(held).toBe(0); // every body went back to the pool
    // A writer given up before finish (a failed segment) gives back the body it was filling.
    const abandoned = new PackWriter(watched, index, domain, bodySlots, 50_000, maxChunk, 1);
    abandoned.add(chunkId(keys, plains[1]!), scratch.subarray(0, sealChunk(keys, chunkId(keys, plains[1]!), plains[1]!, scratch, 0)));
    expect(held).toBe(1);
    abandoned.releaseUnsealed();
    expect(held).toBe(0);
    expect(store.objects.size).toBe(packs.packsWritten);
    expect(packs.packBytes).toBe([...store.objects.values()].reduce((a, b) => a + b.length, 0));
    for (const plain of plains) {
      const id = chunkId(keys, plain);
      const loc = index.domain(DOMAIN).get(id.toString('hex'))!;
      expect(loc, 'indexed').toBeDefined();
      expectSameBytes(openChunk(keys, id, await store.getRange(loc.pack, loc.offset, loc.length), 40_000 * 4), plain);
    }
    // every pack's own header agrees with the index
    for (const [key, body] of store.objects) {
      const header = await readPackHeader(store, keys, key, body.length);
      expect(header.length).toBeGreaterThan(0);
      for (const e of header) expect(index.domain(DOMAIN).get(e.id.toString('hex'))).toEqual({ pack: key, offset: e.offset, length: e.length });
    }
  });

  it('keeps each pack within its target (bodies of target + header room) and gives a body back once stored, before the index write', async () => {
    const store = new MemoryObjectStore();
    const index = new MemoryChunkIndex();
    const domain = { projectId: 'p', domainId: DOMAIN, kmsKeyId: 'k', keys };
    const target = 100_000;
    const maxChunk = 40_000 + SEAL_OVERHEAD;
    const pool = new ChunkPool({ workers: 0 });
    const asked: number[] = [];
    let held = 0;
    const bodySlots = { acquire: (n: number) => (asked.push(n), held++, pool.acquire(n)), release: (slot: Slot) => (held--, pool.release(slot)) };
    // The index write of the first pack waits until the test lets it go.
    const { promise: indexMayWrite, resolve: letIndexWrite } = Promise.withResolvers<void>();
    const heldAtIndexWrite: number[] = [];
    const slowIndex = Object.assign(Object.create(index) as MemoryChunkIndex, {
      record: async (domainId: string, entries: Parameters<MemoryChunkIndex['record']>[1]) => {
        heldAtIndexWrite.push(held);
        await indexMayWrite;
        return index.record(domainId, entries);
      },
    });
    const packs = new PackWriter(store, slowIndex, domain, bodySlots, target, maxChunk, 1);
    const scratch = Buffer.alloc(maxChunk);
    const sizes = [30_000, 30_000, 30_000, 30_000]; // the fourth would take the first pack past 100,000
    for (const [i, size] of sizes.entries()) {
      const plain = randomBytes(size - i); // distinct, incompressible
      const id = chunkId(keys, plain);
      packs.add(id, scratch.subarray(0, sealChunk(keys, id, plain, scratch, 0)));
    }
    // The first pack (three chunks) was sealed when the fourth arrived; its upload ran, its index write waits.
    await vi.waitFor(() => expect(heldAtIndexWrite).toHaveLength(1));
    expect(heldAtIndexWrite[0]).toBe(1); // only the body being filled: the stored pack's body is back
    letIndexWrite();
    await packs.finish();
    expect(held).toBe(0);
    expect(packs.packsWritten).toBe(2);
    for (const body of store.objects.values()) expect(body.length).toBeLessThanOrEqual(target + 64 * 1024);
    expect(Math.max(...asked)).toBeLessThanOrEqual(target + 256 * 1024); // the target and the header's room; none for a chunk past it
  });
});

describe('pack format version', () => {
  /** A stored pack whose trailer magic is replaced by `magic` (8 bytes). */
  async function withMagic(magic: string) {
    const store = new MemoryObjectStore();
    const { key, body } = await storedPack(store);
    const changed = Buffer.from(body);
    changed.write(magic, changed.length - PACK_MAGIC.length, 'latin1');
    await store.put(key, changed);
    return { store, key, size: changed.length };
  }

  it('writes format version 01 in the trailer magic', async () => {
    const { body } = await storedPack(new MemoryObjectStore());
    expect(body.subarray(body.length - 8).toString('latin1')).toBe('OVBSPK01');
  });

  it.each(['02', '99', '00'])('refuses a pack of format version %s, naming the pack and the version it found', async (version) => {
    const { store, key, size } = await withMagic(`OVBSPK${version}`);
    const read = readPackHeader(store, keys, key, size);
    await expect(read).rejects.toMatchObject({ name: 'PackFormatError', packKey: key, version });
    await expect(read).rejects.toThrow(`${key} is not an OpenVBS pack of a known version: its trailer says format version "${version}"; this OpenVBS reads only 01`);
  });

  it('refuses an object without a pack magic, naming it and what it found', async () => {
    const { store, key, size } = await withMagic('NOTAPACK');
    const read = readPackHeader(store, keys, key, size);
    await expect(read).rejects.toMatchObject({ name: 'PackFormatError', packKey: key, version: undefined });
    await expect(read).rejects.toThrow(`${key} is not an OpenVBS pack: it does not end in OVBSPK01 (found 0x${Buffer.from('NOTAPACK').toString('hex')})`);
  });

  it('refuses an object shorter than a pack trailer without reading past its start', async () => {
    const store = new MemoryObjectStore();
    await store.put('packs/x/tiny', Buffer.from('OVBSPK1'));
    await expect(readPackHeader(store, keys, 'packs/x/tiny', 7)).rejects.toMatchObject({ name: 'PackFormatError', packKey: 'packs/x/tiny' });
  });
});

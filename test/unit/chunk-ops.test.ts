// Batch chunk operations over a buffer of blocks whose last block is short.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CHUNK_ID_BYTES, SEAL_OVERHEAD, chunkId, contentId, deriveDomainKeys, leafHashes, treeId } from '../../lib/engine/chunk-codec.ts';
import { digestBlocks, openChunks, sealBlocks, sealCapacity } from '../../lib/engine/chunk-ops.ts';
import { expectSameBytes } from './bytes.ts';

const BS = 4096;
const keys = deriveDomainKeys(randomBytes(32), 'd-ops');

/** blocks: 0 text, 1 zeros, 2 random, 3 text (same as 0), 4 short random tail (1000 bytes). */
function sample(): Buffer {
  const data = Buffer.alloc(4 * BS + 1000);
  const textBlock = Buffer.from('backup restore chunk pack '.repeat(200)).subarray(0, BS);
  textBlock.copy(data, 0);
  randomBytes(BS).copy(data, 2 * BS);
  textBlock.copy(data, 3 * BS);
  randomBytes(1000).copy(data, 4 * BS);
  return data;
}

const blockOf = (data: Buffer, b: number) => data.subarray(b * BS, Math.min(data.length, (b + 1) * BS));
const idOf = (ids: Buffer, i: number) => ids.subarray(i * CHUNK_ID_BYTES, (i + 1) * CHUNK_ID_BYTES);

/** Back-to-back chunk positions for these sealed lengths. */
function layout(lengths: number[]): Array<{ offset: number; length: number }> {
  let at = 0;
  return lengths.map((length) => {
    const c = { offset: at, length };
    at += length;
    return c;
  });
}

/** Seals `blocks` of `data` into a fresh output buffer of exactly sealCapacity bytes. */
function seal(data: Buffer, blocks: number[], ids: Buffer) {
  const out = Buffer.alloc(sealCapacity(data.length, BS, blocks));
  const lengths = sealBlocks(keys, data, BS, blocks, ids, out);
  const total = lengths.reduce((a, b) => a + b, 0);
  return { out, lengths, sealed: out.subarray(0, total) };
}

describe('digestBlocks', () => {
  it('ids every block including the short last one and flags zero blocks', () => {
    const data = sample();
    const { ids, zero } = digestBlocks(keys, data, BS);
    expect(zero).toEqual(new Uint8Array([0, 1, 0, 0, 0]));
    expect(ids.length).toBe(5 * CHUNK_ID_BYTES);
    expect(idOf(ids, 1).every((b) => b === 0)).toBe(true);
    for (const b of [0, 2, 3, 4]) expect(idOf(ids, b), `block ${b}`).toEqual(chunkId(keys, blockOf(data, b)));
    expect(idOf(ids, 0)).toEqual(idOf(ids, 3)); // same content, same id
    expect(blockOf(data, 4).length).toBe(1000);
  });

  it('flags a short all-zero tail as zero', () => {
    const data = Buffer.alloc(BS + 10);
    data[5] = 1;
    const { zero } = digestBlocks(keys, data, BS);
    expect(zero).toEqual(new Uint8Array([0, 1]));
  });

  it('handles a buffer smaller than one block', () => {
    const data = randomBytes(100);
    const { ids, zero } = digestBlocks(keys, data, BS);
    expect(zero).toEqual(new Uint8Array([0]));
    expect(ids).toEqual(chunkId(keys, data));
  });

  it('sees a single non-zero byte anywhere in a block larger than the zero page, at any offset', () => {
    const big = 200 * 1024; // more than one 64 KiB zero page, not a multiple of it
    const backing = Buffer.alloc(2 * big + 3);
    const data = backing.subarray(3); // unaligned view
    expect(digestBlocks(keys, data, big).zero).toEqual(new Uint8Array([1, 1]));
    for (const at of [0, 64 * 1024 - 1, 64 * 1024, big - 1, big + 150_000, 2 * big - 1]) {
      data[at] = 1;
      const expected = at < big ? [0, 1] : [1, 0];
      expect(Array.from(digestBlocks(keys, data, big).zero), `byte ${at}`).toEqual(expected);
      data[at] = 0;
    }
  });
});

describe('sealCapacity', () => {
  it('is each listed block (the short one at its length) plus the seal overhead', () => {
    const length = 4 * BS + 1000;
    expect(sealCapacity(length, BS, [])).toBe(0);
    expect(sealCapacity(length, BS, [0])).toBe(BS + SEAL_OVERHEAD);
    expect(sealCapacity(length, BS, [0, 2, 4])).toBe(2 * (BS + SEAL_OVERHEAD) + 1000 + SEAL_OVERHEAD);
  });
});

describe('sealBlocks and openChunks', () => {
  it('seal the listed blocks back to back and open them again, the short block included', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const blocks = [0, 2, 4];
    const listed = Buffer.concat(blocks.map((b) => idOf(ids, b)));
    const { out, lengths, sealed } = seal(data, blocks, listed);
    expect(lengths).toHaveLength(3);
    expect(sealed.length).toBeLessThanOrEqual(out.length); // fits in sealCapacity
    expect(lengths[0]).toBeLessThan(BS); // text compresses
    expect(lengths[1]).toBe(BS + SEAL_OVERHEAD); // random stays raw
    expect(lengths[2]).toBe(1000 + SEAL_OVERHEAD); // short random tail

    const plain = Buffer.alloc(blocks.length * BS);
    const opened = openChunks(keys, sealed, layout(lengths), listed, BS, plain);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.lengths).toEqual([BS, BS, 1000]);
    expect(opened.offsets).toEqual([0, BS, 2 * BS]); // back to back in the output
    blocks.forEach((b, i) => {
      expectSameBytes(plain.subarray(opened.offsets[i]!, opened.offsets[i]! + opened.lengths[i]!), blockOf(data, b), `block ${b}`);
    });
  });

  it('writes into the output it is given and nowhere else', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const blocks = [2, 4]; // raw: sealed length known exactly
    const listed = Buffer.concat(blocks.map((b) => idOf(ids, b)));
    const capacity = sealCapacity(data.length, BS, blocks);
    const out = Buffer.alloc(capacity + 64, 0xee);
    const lengths = sealBlocks(keys, data, BS, blocks, listed, out.subarray(0, capacity));
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(capacity);
    expect(out.subarray(capacity).every((b) => b === 0xee)).toBe(true);

    const plain = Buffer.alloc(2 * BS + 64, 0xdd);
    const opened = openChunks(keys, out.subarray(0, capacity), layout(lengths), listed, BS, plain.subarray(0, 2 * BS));
    expect(opened.ok).toBe(true);
    expect(plain.subarray(2 * BS).every((b) => b === 0xdd)).toBe(true);
  });

  it('reports the index of the first chunk that does not verify', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const blocks = [0, 2, 3];
    const listed = Buffer.concat(blocks.map((b) => idOf(ids, b)));
    const { lengths, sealed } = seal(data, blocks, listed);
    const chunks = layout(lengths);
    const bad = Buffer.from(sealed);
    bad[lengths[0]! + 20] = bad[lengths[0]! + 20]! ^ 0xff;
    const r = openChunks(keys, bad, chunks, listed, BS, Buffer.alloc(3 * BS));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.index).toBe(1);
      expect(r.reason).toMatch(/tag mismatch/);
    }
    // ids in the wrong order: the first chunk already fails
    const swapped = Buffer.concat([idOf(listed, 1), idOf(listed, 0), idOf(listed, 2)]);
    const r2 = openChunks(keys, sealed, chunks, swapped, BS, Buffer.alloc(3 * BS));
    expect(r2.ok ? -1 : r2.index).toBe(0);
    // the untouched data still opens
    expect(openChunks(keys, sealed, chunks, listed, BS, Buffer.alloc(3 * BS)).ok).toBe(true);
  });

  it('refuses a chunk that lies beyond the data or opens larger than a block', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const blocks = [0, 2]; // 0 compressed text, 2 raw random
    const listed = Buffer.concat(blocks.map((b) => idOf(ids, b)));
    const { lengths, sealed } = seal(data, blocks, listed);
    const chunks = layout(lengths);
    const out = Buffer.alloc(2 * BS);

    const beyond = openChunks(keys, sealed, [{ offset: 0, length: lengths[0]! + lengths[1]! + 1 }], listed, BS, out);
    expect(beyond.ok ? '' : beyond.reason).toMatch(/beyond/);
    // a compressed chunk is stopped while decompressing, a raw one after decryption
    const compressed = openChunks(keys, sealed, [chunks[0]!], idOf(listed, 0), BS - 1, out);
    expect(compressed.ok ? '' : compressed.reason).toMatch(/at most a chunk/);
    const raw = openChunks(keys, sealed, [chunks[1]!], idOf(listed, 1), BS - 1, out);
    expect(raw.ok ? '' : raw.reason).toMatch(/larger than the largest chunk/);
    // with a block's room both open
    expect(openChunks(keys, sealed, chunks, listed, BS, out).ok).toBe(true);
  });

  it('seal extents and sub-chunks under tree ids built from a digest at the sub-chunk size, and open them with that leaf size', () => {
    const data = sample();
    const leaf = BS / 4;
    const digest = digestBlocks(keys, data, leaf);
    expect(digest.ids).toEqual(leafHashes(keys, data, leaf)); // a digest at the leaf size is the leaf hashes
    // extent 0 = blocks 0-1 (a zero block inside), and the sub-chunk at leaf 9 (inside block 2)
    const extentId = treeId(keys, digest.ids.subarray(0, 8 * CHUNK_ID_BYTES), leaf, 2 * BS);
    expect(extentId).toEqual(contentId(keys, data.subarray(0, 2 * BS), leaf));
    const subId = treeId(keys, idOf(digest.ids, 9), leaf, leaf);
    const extentOut = Buffer.alloc(sealCapacity(data.length, 2 * BS, [0]));
    const [extentLength] = sealBlocks(keys, data, 2 * BS, [0], extentId, extentOut);
    const subOut = Buffer.alloc(sealCapacity(data.length, leaf, [9]));
    const [subLength] = sealBlocks(keys, data, leaf, [9], subId, subOut);
    const sealed = Buffer.concat([extentOut.subarray(0, extentLength), subOut.subarray(0, subLength)]);
    const chunks = layout([extentLength!, subLength!]);
    const ids = Buffer.concat([extentId, subId]);

    const plain = Buffer.alloc(2 * 2 * BS);
    const opened = openChunks(keys, sealed, chunks, ids, 2 * BS, plain, leaf);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.lengths).toEqual([2 * BS, leaf]);
    expectSameBytes(plain.subarray(0, 2 * BS), data.subarray(0, 2 * BS));
    expectSameBytes(plain.subarray(opened.offsets[1]!, opened.offsets[1]! + leaf), data.subarray(9 * leaf, 10 * leaf));
    // opened as version-1 chunks (or with another leaf size) they do not verify
    const flat = openChunks(keys, sealed, chunks, ids, 2 * BS, plain);
    expect(flat.ok ? '' : flat.reason).toMatch(/does not match/);
    expect(openChunks(keys, sealed, chunks, ids, 2 * BS, plain, leaf * 2).ok).toBe(false);
  });

  it('tells the caller each chunk it has sealed, by its plaintext bytes', () => {
    const data = sample();
    const blocks = [0, 2, 4];
    const told: number[] = [];
    const out = Buffer.alloc(sealCapacity(data.length, BS, blocks));
    const lengths = sealBlocks(keys, data, BS, blocks, Buffer.concat(blocks.map((b) => chunkId(keys, blockOf(data, b)))), out, (n) => told.push(n));
    expect(told).toEqual([BS, BS, 1000]);
    expect(lengths).toHaveLength(3);
  });

  it('seals nothing for an empty block list', () => {
    const out = Buffer.alloc(16, 0xee);
    const lengths = sealBlocks(keys, sample(), BS, [], Buffer.alloc(0), out);
    expect(lengths).toEqual([]);
    expect(out.every((b) => b === 0xee)).toBe(true);
  });
});

// Batch chunk operations over a buffer of blocks whose last block is short.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CHUNK_ID_BYTES, SEAL_OVERHEAD, chunkId, deriveDomainKeys } from '../../lib/engine/chunk-codec.ts';
import { digestBlocks, openChunks, sealBlocks } from '../../lib/engine/chunk-ops.ts';
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
});

describe('sealBlocks and openChunks', () => {
  it('seal the listed blocks back to back and open them again, the short block included', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const blocks = [0, 2, 4];
    const listed = Buffer.concat(blocks.map((b) => idOf(ids, b)));
    const { sealed, lengths } = sealBlocks(keys, data, BS, blocks, listed);
    expect(lengths).toHaveLength(3);
    expect(sealed.length).toBe(lengths.reduce((a, b) => a + b, 0));
    expect(lengths[0]).toBeLessThan(BS); // text compresses
    expect(lengths[1]).toBe(BS + SEAL_OVERHEAD); // random stays raw
    expect(lengths[2]).toBe(1000 + SEAL_OVERHEAD); // short random tail
    // the sealed buffer owns its memory (it is moved between threads)
    expect(sealed.byteOffset).toBe(0);

    let at = 0;
    const chunks = lengths.map((length) => {
      const c = { offset: at, length };
      at += length;
      return c;
    });
    const opened = openChunks(keys, sealed, chunks, listed, BS);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.lengths).toEqual([BS, BS, 1000]);
    blocks.forEach((b, i) => {
      expectSameBytes(opened.plain.subarray(opened.offsets[i]!, opened.offsets[i]! + opened.lengths[i]!), blockOf(data, b), `block ${b}`);
    });
  });

  it('reports the index of the first chunk that does not verify', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const blocks = [0, 2, 3];
    const listed = Buffer.concat(blocks.map((b) => idOf(ids, b)));
    const { sealed, lengths } = sealBlocks(keys, data, BS, blocks, listed);
    const chunks = [
      { offset: 0, length: lengths[0]! },
      { offset: lengths[0]!, length: lengths[1]! },
      { offset: lengths[0]! + lengths[1]!, length: lengths[2]! },
    ];
    const bad = Buffer.from(sealed);
    bad[lengths[0]! + 20] = bad[lengths[0]! + 20]! ^ 0xff;
    const r = openChunks(keys, bad, chunks, listed, BS);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.index).toBe(1);
      expect(r.reason).toMatch(/tag mismatch/);
    }
    // ids in the wrong order: the first chunk already fails
    const swapped = Buffer.concat([idOf(listed, 1), idOf(listed, 0), idOf(listed, 2)]);
    const r2 = openChunks(keys, sealed, chunks, swapped, BS);
    expect(r2.ok ? -1 : r2.index).toBe(0);
  });

  it('refuses a chunk that lies beyond the data or opens larger than a block', () => {
    const data = sample();
    const { ids } = digestBlocks(keys, data, BS);
    const listed = idOf(ids, 0);
    const { sealed, lengths } = sealBlocks(keys, data, BS, [0], Buffer.from(listed));
    const beyond = openChunks(keys, sealed, [{ offset: 0, length: lengths[0]! + 1 }], Buffer.from(listed), BS);
    expect(beyond.ok ? '' : beyond.reason).toMatch(/beyond/);
    const tooBig = openChunks(keys, sealed, [{ offset: 0, length: lengths[0]! }], Buffer.from(listed), BS - 1);
    expect(tooBig.ok ? '' : tooBig.reason).toMatch(/larger than a block/);
  });

  it('seals nothing for an empty block list', () => {
    const { sealed, lengths } = sealBlocks(keys, sample(), BS, [], Buffer.alloc(0));
    expect(sealed.length).toBe(0);
    expect(lengths).toEqual([]);
  });
});

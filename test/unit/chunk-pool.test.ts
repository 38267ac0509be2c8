// The worker-thread chunk pool must give exactly what the inline pool gives, in both directions.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_ID_BYTES, deriveDomainKeys } from '../../lib/engine/chunk-codec.ts';
import { ChunkPool, allocTransferable } from '../../lib/engine/chunk-pool.ts';
import { expectSameBytes } from './bytes.ts';

const BS = 64 * 1024;
const DOMAIN = 'd-pool';
const keys = deriveDomainKeys(randomBytes(32), DOMAIN);

/** 8 blocks plus a short tail: text, zeros, random, repeated text. */
function source(): Buffer {
  const data = Buffer.alloc(8 * BS + 12_345);
  const text = Buffer.from('volume snapshot manifest index '.repeat(Math.ceil(BS / 31))).subarray(0, BS);
  for (const b of [0, 3, 6]) text.copy(data, b * BS);
  for (const b of [2, 5, 7]) randomBytes(BS).copy(data, b * BS);
  data[3 * BS + 17] = 0x42; // block 3 differs from block 0 by one byte
  randomBytes(12_345).copy(data, 8 * BS);
  return data; // blocks 1 and 4 stay zero
}

/** A copy that owns its ArrayBuffer (required: the pool moves it to a worker). */
function transferable(src: Buffer): Buffer {
  const b = allocTransferable(src.length);
  src.copy(b);
  return b;
}

describe('ChunkPool', () => {
  let inline: ChunkPool;
  let threaded: ChunkPool;
  const data = source();

  beforeAll(() => {
    inline = new ChunkPool({ workers: 0 });
    threaded = new ChunkPool({ workers: 2 });
    inline.registerDomain(DOMAIN, keys);
    threaded.registerDomain(DOMAIN, keys);
  });
  afterAll(async () => {
    await threaded?.close();
    await inline?.close();
  });

  it('has the requested size', () => {
    expect(inline.size).toBe(0);
    expect(threaded.size).toBe(2);
  });

  it('digests to the same ids and zero flags with workers and inline, and hands the data back intact', async () => {
    const a = await inline.digest(DOMAIN, transferable(data), BS);
    const b = await threaded.digest(DOMAIN, transferable(data), BS);
    expect(Buffer.from(b.ids)).toEqual(Buffer.from(a.ids));
    expect(Array.from(b.zero)).toEqual(Array.from(a.zero));
    expect(Array.from(a.zero)).toEqual([0, 1, 0, 0, 1, 0, 0, 0, 0]);
    expectSameBytes(b.data, data);
    expectSameBytes(a.data, data);
  });

  it('opens inline what the workers sealed, and in the workers what was sealed inline', async () => {
    const digest = await inline.digest(DOMAIN, transferable(data), BS);
    const blocks = [...digest.zero.keys()].filter((j) => !digest.zero[j]);
    const ids = Buffer.concat(blocks.map((j) => digest.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES)));
    const expected = blocks.map((j) => data.subarray(j * BS, Math.min(data.length, (j + 1) * BS)));

    const viaWorkers = await threaded.seal(DOMAIN, transferable(data), BS, blocks, ids);
    const viaInline = await inline.seal(DOMAIN, transferable(data), BS, blocks, ids);
    expectSameBytes(viaWorkers.data, data);
    expect(viaWorkers.lengths).toEqual(viaInline.lengths); // same compression decisions, same sizes

    const layout = (lengths: number[]) => {
      let at = 0;
      return lengths.map((length) => {
        const c = { offset: at, length };
        at += length;
        return c;
      });
    };
    for (const [sealedBy, openWith] of [
      [viaWorkers, inline],
      [viaInline, threaded],
    ] as const) {
      const opened = await openWith.open(DOMAIN, Buffer.from(sealedBy.sealed), layout(sealedBy.lengths), ids, BS);
      expect(opened.ok).toBe(true);
      if (!opened.ok) continue;
      expected.forEach((block, i) => {
        expectSameBytes(opened.plain.subarray(opened.offsets[i]!, opened.offsets[i]! + opened.lengths[i]!), block);
      });
    }
  });

  it('reports a corrupted chunk from a worker with its index', async () => {
    const digest = await inline.digest(DOMAIN, transferable(data), BS);
    const blocks = [0, 2];
    const ids = Buffer.concat(blocks.map((j) => digest.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES)));
    const sealed = await inline.seal(DOMAIN, transferable(data), BS, blocks, ids);
    const bad = Buffer.from(sealed.sealed);
    bad[sealed.lengths[0]! + 40] = bad[sealed.lengths[0]! + 40]! ^ 1;
    const chunks = [
      { offset: 0, length: sealed.lengths[0]! },
      { offset: sealed.lengths[0]!, length: sealed.lengths[1]! },
    ];
    const r = await threaded.open(DOMAIN, bad, chunks, ids, BS);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.index).toBe(1);
  });

  it('runs many tasks at once across workers with the same results as inline', async () => {
    const inputs = Array.from({ length: 12 }, (_, i) => {
      const b = Buffer.from(data);
      b[i * 1000] = i + 1; // each input a little different
      return b;
    });
    const [fromWorkers, fromInline] = await Promise.all([
      Promise.all(inputs.map((b) => threaded.digest(DOMAIN, transferable(b), BS))),
      Promise.all(inputs.map((b) => inline.digest(DOMAIN, transferable(b), BS))),
    ]);
    fromWorkers.forEach((r, i) => expect(Buffer.from(r.ids)).toEqual(Buffer.from(fromInline[i]!.ids)));
  });

  it('rejects work for a domain that was never registered', async () => {
    await expect(inline.digest('d-unknown', transferable(data), BS)).rejects.toThrow(/not registered/);
    await expect(threaded.digest('d-unknown', transferable(data), BS)).rejects.toThrow(/not registered/);
  });

  it('rejects work after close', async () => {
    const pool = new ChunkPool({ workers: 1 });
    pool.registerDomain(DOMAIN, keys);
    await pool.close();
    await expect(pool.digest(DOMAIN, transferable(data), BS)).rejects.toThrow(/closed/);
  });
});

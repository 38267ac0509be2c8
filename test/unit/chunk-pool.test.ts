// The worker-thread chunk pool must give exactly what the inline pool gives, in both directions, and
// manage its shared slots: recycled best-fit, capped, output slots given back when an operation fails.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_ID_BYTES, deriveDomainKeys, openChunk } from '../../lib/engine/chunk-codec.ts';
import { ChunkPool, ChunkWorkerError } from '../../lib/engine/chunk-pool.ts';
import type { Slot } from '../../lib/engine/chunk-pool.ts';
import { expectSameBytes } from './bytes.ts';

const BS = 64 * 1024;
const MiB = 1024 * 1024;
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

/** A pool slot holding a copy of `src` at its start. */
function load(pool: ChunkPool, src: Uint8Array): Slot {
  const slot = pool.acquire(src.length);
  slot.buf.set(src);
  return slot;
}

/** Back-to-back chunk positions for these sealed lengths. */
function layout(lengths: number[]): Array<{ offset: number; length: number }> {
  let at = 0;
  return lengths.map((length) => {
    const c = { offset: at, length };
    at += length;
    return c;
  });
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const blockOf = (data: Buffer, j: number) => data.subarray(j * BS, Math.min(data.length, (j + 1) * BS));

describe('ChunkPool', () => {
  let inline: ChunkPool;
  let threaded: ChunkPool;
  const data = source();
  /** The non-zero blocks of `data` and their ids, 32 bytes each. */
  let blocks: number[];
  let ids: Buffer;

  beforeAll(async () => {
    inline = new ChunkPool({ workers: 0 });
    threaded = new ChunkPool({ workers: 2 });
    inline.registerDomain(DOMAIN, keys);
    threaded.registerDomain(DOMAIN, keys);
    const slot = load(inline, data);
    const digest = await inline.digest(DOMAIN, slot, data.length, BS);
    inline.release(slot);
    blocks = [...digest.zero.keys()].filter((j) => !digest.zero[j]);
    ids = Buffer.concat(blocks.map((j) => digest.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES)));
  });
  afterAll(async () => {
    await threaded?.close();
    await inline?.close();
  });

  it('has the requested size', () => {
    expect(inline.size).toBe(0);
    expect(threaded.size).toBe(2);
  });

  it('digests to the same ids and zero flags with workers and inline, and leaves the slot untouched', async () => {
    const sa = load(inline, data);
    const sb = load(threaded, data);
    const a = await inline.digest(DOMAIN, sa, data.length, BS);
    const b = await threaded.digest(DOMAIN, sb, data.length, BS);
    expect(Buffer.from(b.ids)).toEqual(Buffer.from(a.ids));
    expect(Array.from(b.zero)).toEqual(Array.from(a.zero));
    expect(Array.from(a.zero)).toEqual([0, 1, 0, 0, 1, 0, 0, 0, 0]);
    expectSameBytes(sb.buf.subarray(0, data.length), data);
    expectSameBytes(sa.buf.subarray(0, data.length), data);
    inline.release(sa);
    threaded.release(sb);
  });

  it('digests only the first `length` bytes of a slot, whatever lies after them', async () => {
    const slot = load(threaded, data);
    slot.buf.fill(0x55, data.length, data.length + BS); // garbage after the batch
    const r = await threaded.digest(DOMAIN, slot, data.length, BS);
    expect(r.zero.length).toBe(9);
    const last = r.ids.subarray(8 * CHUNK_ID_BYTES);
    const expected = await inline.digest(DOMAIN, load(inline, data.subarray(8 * BS)), 12_345, BS);
    expect(Buffer.from(last)).toEqual(Buffer.from(expected.ids));
    threaded.release(slot);
  });

  it('opens inline what the workers sealed, and in the workers what was sealed inline', async () => {
    const expected = blocks.map((j) => blockOf(data, j));
    const inW = load(threaded, data);
    const inI = load(inline, data);
    const viaWorkers = await threaded.seal(DOMAIN, inW, data.length, BS, blocks, ids);
    const viaInline = await inline.seal(DOMAIN, inI, data.length, BS, blocks, ids);
    expectSameBytes(inW.buf.subarray(0, data.length), data); // the input is not modified
    expect(viaWorkers.lengths).toEqual(viaInline.lengths); // same compression decisions, same sizes
    expect(viaWorkers.out.id).not.toBe(inW.id);
    threaded.release(inW);
    inline.release(inI);

    for (const [sealedBy, from, openWith] of [
      [viaWorkers, threaded, inline],
      [viaInline, inline, threaded],
    ] as const) {
      const total = sum(sealedBy.lengths);
      const input = load(openWith, sealedBy.out.buf.subarray(0, total)); // as restore copies a ranged GET in
      from.release(sealedBy.out);
      const opened = await openWith.open(DOMAIN, input, total, layout(sealedBy.lengths), ids, BS);
      openWith.release(input);
      expect(opened.ok).toBe(true);
      if (!opened.ok) continue;
      expect(opened.out.id).not.toBe(input.id);
      expect(opened.lengths).toEqual(expected.map((b) => b.length));
      expected.forEach((block, i) => {
        expectSameBytes(opened.out.buf.subarray(opened.offsets[i]!, opened.offsets[i]! + opened.lengths[i]!), block);
      });
      openWith.release(opened.out);
    }
  });

  it('reports a corrupted chunk from a worker and inline with its index', async () => {
    const two = [0, 2];
    const twoIds = Buffer.concat(two.map((j) => ids.subarray(blocks.indexOf(j) * CHUNK_ID_BYTES, (blocks.indexOf(j) + 1) * CHUNK_ID_BYTES)));
    const input = load(inline, data);
    const sealed = await inline.seal(DOMAIN, input, data.length, BS, two, twoIds);
    inline.release(input);
    const total = sum(sealed.lengths);
    const bad = Buffer.from(sealed.out.buf.subarray(0, total));
    inline.release(sealed.out);
    bad[sealed.lengths[0]! + 40] = bad[sealed.lengths[0]! + 40]! ^ 1;
    for (const pool of [threaded, inline]) {
      const slot = load(pool, bad);
      const r = await pool.open(DOMAIN, slot, total, layout(sealed.lengths), twoIds, BS);
      pool.release(slot);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.index).toBe(1);
        expect(r.reason).toMatch(/tag mismatch/);
      }
    }
  });

  it('runs many digests at once across workers with the same results as inline', async () => {
    const inputs = Array.from({ length: 12 }, (_, i) => {
      const b = Buffer.from(data);
      b[i * 1000] = i + 1; // each input a little different
      return b;
    });
    const run = (pool: ChunkPool) =>
      Promise.all(
        inputs.map(async (b) => {
          const slot = load(pool, b);
          try {
            return await pool.digest(DOMAIN, slot, b.length, BS);
          } finally {
            pool.release(slot);
          }
        }),
      );
    const [fromWorkers, fromInline] = await Promise.all([run(threaded), run(inline)]);
    fromWorkers.forEach((r, i) => expect(Buffer.from(r.ids), `input ${i}`).toEqual(Buffer.from(fromInline[i]!.ids)));
    expect(new Set(fromWorkers.map((r) => Buffer.from(r.ids).toString('hex'))).size).toBe(12);
  });

  it('seals many batches at once into distinct output slots, each opening to its own input', async () => {
    const inputs = Array.from({ length: 10 }, (_, i) => {
      const b = Buffer.from(data);
      for (const j of [0, 3, 6]) b[j * BS + 100 + i] = 0x30 + i; // text blocks differ per input, still compress
      return b;
    });
    const sealedAll = await Promise.all(
      inputs.map(async (b) => {
        const slot = load(threaded, b);
        try {
          const d = await threaded.digest(DOMAIN, slot, b.length, BS);
          const own = Buffer.concat(blocks.map((j) => d.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES)));
          return { own, ...(await threaded.seal(DOMAIN, slot, b.length, BS, blocks, own)) };
        } finally {
          threaded.release(slot);
        }
      }),
    );
    // every output slot was still held when the others were written: no two share one
    expect(new Set(sealedAll.map((s) => s.out.id)).size).toBe(inputs.length);
    sealedAll.forEach((s, i) => {
      let at = 0;
      blocks.forEach((j, k) => {
        const len = s.lengths[k]!;
        const plain = openChunk(keys, s.own.subarray(k * CHUNK_ID_BYTES, (k + 1) * CHUNK_ID_BYTES), s.out.buf.subarray(at, at + len), BS);
        expectSameBytes(plain, blockOf(inputs[i]!, j), `input ${i} block ${j}`);
        at += len;
      });
      threaded.release(s.out);
    });
  });

  it('rejects work for a domain that was never registered', async () => {
    for (const pool of [inline, threaded]) {
      const slot = load(pool, data);
      await expect(pool.digest('d-unknown', slot, data.length, BS)).rejects.toThrow(/not registered/);
      await expect(pool.seal('d-unknown', slot, data.length, BS, blocks, ids)).rejects.toThrow(/not registered/);
      pool.release(slot);
    }
  });

  it('replaces a worker that dies: its task fails with a clear error, the pool keeps working with the same keys and slots', async () => {
    const pool = new ChunkPool({ workers: 1 });
    try {
      pool.registerDomain(DOMAIN, keys);
      const slot = load(pool, data);
      const before = await pool.digest(DOMAIN, slot, data.length, BS);
      const workers = (pool as unknown as { workers: Array<{ worker: { terminate(): Promise<number> } }> }).workers;
      const dying = workers[0]!.worker;
      // the task is sent after the worker was told to stop: it can never be answered
      const exited = dying.terminate();
      const held = pool.digest(DOMAIN, slot, data.length, BS);
      await exited;
      await expect(held).rejects.toThrow(ChunkWorkerError);
      await expect(held).rejects.toThrow(/chunk worker exited/);
      expect(workers[0]!.worker).not.toBe(dying);
      // the replacement knows the domain's keys and the slot made before it started
      const after = await pool.digest(DOMAIN, slot, data.length, BS);
      expectSameBytes(after.ids, before.ids);
    } finally {
      await pool.close();
    }
  });

  it('rejects work after close', async () => {
    const pool = new ChunkPool({ workers: 1 });
    pool.registerDomain(DOMAIN, keys);
    const slot = load(pool, data);
    await pool.close();
    await expect(pool.digest(DOMAIN, slot, data.length, BS)).rejects.toThrow(/closed/);
  });
});

describe('ChunkPool slots', () => {
  const pools: ChunkPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });
  const fresh = (workers: number) => {
    const p = new ChunkPool({ workers });
    p.registerDomain(DOMAIN, keys);
    pools.push(p);
    return p;
  };

  it('are shared memory, at least the size asked for, rounded to a size class', () => {
    const pool = fresh(0);
    const a = pool.acquire(1);
    expect(a.buf.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(a.buf.length).toBe(MiB);
    expect(pool.acquire(5 * MiB + 1).buf.length).toBe(6 * MiB);
    expect(pool.acquire(8 * MiB).buf.length).toBe(8 * MiB);
  });

  it.each([0, 1])('are recycled by size class (workers: %i)', (workers) => {
    const pool = fresh(workers);
    const a = pool.acquire(5 * MiB - 10);
    const held = pool.acquire(5 * MiB);
    expect(held.id).not.toBe(a.id); // a is not free yet
    pool.release(a);
    const again = pool.acquire(4 * MiB + 1); // same 5 MiB class
    expect(again.id).toBe(a.id);
    expect(again.buf).toBe(a.buf);
    pool.release(again);
    const other = pool.acquire(9 * MiB); // another class: a new slot
    expect(other.id).not.toBe(a.id);
    expect(other.id).not.toBe(held.id);
    expect(pool.acquire(5 * MiB).id).toBe(a.id);
  });

  it('reuses the smallest free slot that fits within twice the request, and no larger one', () => {
    const pool = fresh(0);
    const big = pool.acquire(16 * MiB);
    const mid = pool.acquire(6 * MiB);
    pool.release(big);
    pool.release(mid);
    expect(pool.acquire(2 * MiB).id).not.toBe(big.id); // 16 MiB would waste more than the request
    expect(pool.acquire(5 * MiB).id).toBe(mid.id); // 6 MiB fits
    expect(pool.acquire(9 * MiB).id).toBe(big.id); // 16 <= 2 x 9
  });

  it('gives back free slots beyond maxFreeBytes, and workers keep working on new ones', async () => {
    const pool = new ChunkPool({ workers: 1, maxFreeBytes: 2 * MiB });
    pool.registerDomain(DOMAIN, keys);
    pools.push(pool);
    const held = [pool.acquire(MiB), pool.acquire(MiB), pool.acquire(MiB)];
    for (const slot of held) pool.release(slot);
    expect(pool.freeSlotBytes).toBe(2 * MiB);
    const reused = [pool.acquire(MiB), pool.acquire(MiB), pool.acquire(MiB)];
    expect(reused.map((s) => s.id).sort()).toEqual([held[1]!.id, held[2]!.id, reused[2]!.id].sort());
    expect(reused[2]!.id).not.toBe(held[0]!.id); // the dropped slot is not handed out again
    const data = source();
    const fresh = pool.acquire(data.length);
    fresh.buf.set(data);
    const inline = new ChunkPool({ workers: 0 });
    inline.registerDomain(DOMAIN, keys);
    pools.push(inline);
    const expected = await inline.digest(DOMAIN, load(inline, data), data.length, BS);
    expect(Buffer.from((await pool.digest(DOMAIN, fresh, data.length, BS)).ids)).toEqual(Buffer.from(expected.ids));
  });

  it('a recycled slot is read afresh by the workers', async () => {
    const pool = fresh(1);
    const x = source();
    const y = source();
    const first = load(pool, x);
    const dx = await pool.digest(DOMAIN, first, x.length, BS);
    pool.release(first);
    const second = load(pool, y);
    expect(second.id).toBe(first.id);
    const dy = await pool.digest(DOMAIN, second, y.length, BS);
    pool.release(second);
    const inline = fresh(0);
    const ey = await inline.digest(DOMAIN, load(inline, y), y.length, BS);
    expect(Buffer.from(dy.ids)).toEqual(Buffer.from(ey.ids));
    expect(Buffer.from(dy.ids)).not.toEqual(Buffer.from(dx.ids)); // random blocks differ between x and y
  });

  it.each([0, 2])('a failed open gives its output slot back (workers: %i)', async (workers) => {
    const pool = fresh(workers);
    const data = source();
    const blocks = [0, 2];
    const input = load(pool, data);
    const d = await pool.digest(DOMAIN, input, data.length, BS);
    const ids = Buffer.concat(blocks.map((j) => d.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES)));
    const sealed = await pool.seal(DOMAIN, input, data.length, BS, blocks, ids);
    pool.release(input);
    const total = sum(sealed.lengths);
    sealed.out.buf[5] = sealed.out.buf[5]! ^ 1; // inside the first chunk's nonce
    // The output slot open() will take: the most recently freed slot of its size class.
    const probe = pool.acquire(blocks.length * BS);
    expect(probe.id).not.toBe(sealed.out.id);
    pool.release(probe);
    const r = await pool.open(DOMAIN, sealed.out, total, layout(sealed.lengths), ids, BS);
    expect(r.ok ? -1 : r.index).toBe(0);
    expect(pool.acquire(blocks.length * BS).id).toBe(probe.id);

    // A successful open keeps it until the caller releases it.
    sealed.out.buf[5] = sealed.out.buf[5]! ^ 1;
    pool.release(probe);
    const ok = await pool.open(DOMAIN, sealed.out, total, layout(sealed.lengths), ids, BS);
    expect(ok.ok && ok.out.id).toBe(probe.id);
    expect(pool.acquire(blocks.length * BS).id).not.toBe(probe.id);
  });

  it.each([0, 1])('a failed seal gives its output slot back (workers: %i)', async (workers) => {
    const pool = fresh(workers);
    const data = source();
    const input = load(pool, data);
    const ids = randomBytes(CHUNK_ID_BYTES);
    const probe = pool.acquire(BS);
    pool.release(probe);
    await expect(pool.seal('d-unknown', input, data.length, BS, [0], ids)).rejects.toThrow(/not registered/);
    expect(pool.acquire(BS).id).toBe(probe.id);
  });
});

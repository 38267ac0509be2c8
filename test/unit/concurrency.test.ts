// Bounded concurrency helpers used for every S3 and DynamoDB fan-out.
import { describe, expect, it } from 'vitest';
import { backoffMs, chunked, createLimiter, mapLimit, sleep } from '../../lib/util/concurrency.ts';

describe('createLimiter', () => {
  it('never runs more than its limit at once, reaches the limit, and runs every task', async () => {
    const limit = createLimiter(3);
    let active = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        limit(async () => {
          active++;
          peak = Math.max(peak, active);
          await sleep((i * 7) % 5);
          active--;
          return i * 2;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(results).toEqual(Array.from({ length: 25 }, (_, i) => i * 2));
  });

  it('keeps going after a task fails and frees its slot', async () => {
    const limit = createLimiter(1);
    let active = 0;
    let peak = 0;
    const run = (fail: boolean) =>
      limit(async () => {
        active++;
        peak = Math.max(peak, active);
        await sleep(1);
        active--;
        if (fail) throw new Error('boom');
        return 'ok';
      });
    const settled = await Promise.allSettled([run(false), run(true), run(false), run(true), run(false)]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect(peak).toBe(1);
  });

  it('turns a rejected task into a rejection without keeping its slot', async () => {
    const limit = createLimiter(1);
    await expect(limit(() => Promise.reject(new Error('early')))).rejects.toThrow('early');
    await expect(limit(async () => 'after')).resolves.toBe('after');
  });

  it('turns a task that throws synchronously into a rejection and frees its slot, also when queued', async () => {
    const limit = createLimiter(1);
    const throwsNow = (): Promise<string> => {
      throw new Error('sync');
    };
    await expect(limit(throwsNow)).rejects.toThrow('sync');
    await expect(limit(async () => 'after')).resolves.toBe('after');
    // queued behind a running task
    const first = limit(() => sleep(5).then(() => 'first'));
    const queued = limit(throwsNow);
    await expect(first).resolves.toBe('first');
    await expect(queued).rejects.toThrow('sync');
    await expect(limit(async () => 'still free')).resolves.toBe('still free');
  });
});

describe('mapLimit', () => {
  it('keeps the input order although items finish out of order, within the limit', async () => {
    let active = 0;
    let peak = 0;
    const items = [30, 5, 20, 1, 10, 0, 15, 2];
    const out = await mapLimit(items, 3, async (ms, i) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(ms);
      active--;
      return `${i}:${ms}`;
    });
    expect(out).toEqual(items.map((ms, i) => `${i}:${ms}`));
    expect(peak).toBe(3);
  });

  it('returns [] for no items and works with a limit above the item count', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
    expect(await mapLimit([1, 2], 10, async (x) => x + 1)).toEqual([2, 3]);
  });

  it('propagates the first error and starts no new items after it', async () => {
    const started: number[] = [];
    const err = await mapLimit([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2, async (x) => {
      started.push(x);
      if (x === 1) {
        await sleep(5);
        throw new Error('first');
      }
      if (x === 2) {
        await sleep(20);
        throw new Error('second');
      }
      await sleep(2);
      return x;
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('first');
    await sleep(30);
    // item 0 finishes, 2 starts, 1 fails; then nothing new is started
    expect(started).toEqual([0, 1, 2]);
  });
});

describe('chunked and backoffMs', () => {
  it('splits into slices of at most `size`', () => {
    expect(chunked([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunked([], 3)).toEqual([]);
  });

  it('grows exponentially with full jitter up to the cap', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const ms = backoffMs(attempt, 50, 5000);
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(Math.min(5000, 50 * 2 ** attempt));
    }
  });
});

// A restore's memory is bounded by its settings, whatever the data compresses to: blocks that shrink to
// a few bytes each must not make one ranged GET restore (and allocate for) hundreds of blocks.
import { copyFile, stat, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../lib/engine/backup.ts';
import { SEAL_OVERHEAD } from '../../lib/engine/chunk-codec.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { Slot } from '../../lib/engine/chunk-pool.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import { sha256File } from '../support/disk-image.ts';
import { createEngineEnv } from '../support/engine-env.ts';
import type { EngineEnv } from '../support/engine-env.ts';

const MiB = 1024 * 1024;
const BLOCK = 512 * 1024;
const RANGE = 2 * MiB;
const CONCURRENCY = 2;

/** A chunk pool that records what is asked of it. */
class CountingPool extends ChunkPool {
  largestRequest = 0;
  held = 0;
  peakHeld = 0;
  createdBytes = 0;
  private readonly seen = new Set<number>();

  override acquire(bytes: number): Slot {
    const slot = super.acquire(bytes);
    this.largestRequest = Math.max(this.largestRequest, bytes);
    this.peakHeld = Math.max(this.peakHeld, ++this.held);
    if (!this.seen.has(slot.id)) {
      this.seen.add(slot.id);
      this.createdBytes += slot.buf.length;
    }
    return slot;
  }

  override release(slot: Slot): void {
    this.held--;
    super.release(slot);
  }
}

describe('restore memory', () => {
  let env: EngineEnv;
  let image: string;

  beforeAll(async () => {
    env = await createEngineEnv('embedded', { engine: { segmentBlocks: 32, restoreRangeBytes: RANGE, restoreConcurrency: CONCURRENCY } });
    // 96 distinct blocks that each compress to a few dozen bytes (one byte value repeated), a zero block
    // among them, and a short last block: three segments.
    const data = Buffer.alloc(95 * BLOCK + 4321);
    for (let b = 0; b < 96; b++) if (b !== 40) data.fill(b + 1, b * BLOCK, Math.min(data.length, (b + 1) * BLOCK));
    image = env.path('compressible.img');
    await writeFile(image, data);
    env.addVolume('p1', 'vol', { path: image });
  });
  afterAll(async () => env?.close());

  it('takes slots of at most restoreRangeBytes, at most two per range in flight, from highly compressible chunks', async () => {
    // One block per chunk: many chunks that each shrink to a few dozen bytes.
    const backup = await runBackup(env.deps, { projectId: 'p1', volumeId: 'vol', name: 'compressible', extentBlocks: 1 });
    expect(backup.stats!.storedBytes).toBeLessThan(96 * 1024); // all of it in one pack, under 1 KiB a block
    const pool = new CountingPool({ workers: 2 });
    try {
      env.addVolume('p1', 'restored', { path: env.path('restored.img') });
      const result = await restoreBackup({ ...env.deps, pool }, { projectId: 'p1', backupId: backup.backupId, targetVolumeId: 'restored' });
      expect(result.bytesWritten).toBe(94 * BLOCK + 4321); // the zero block stays a hole
      expect(pool.largestRequest).toBeLessThanOrEqual(RANGE);
      expect(pool.peakHeld).toBeLessThanOrEqual(2 * CONCURRENCY);
      expect(pool.createdBytes).toBeLessThanOrEqual(2 * CONCURRENCY * RANGE);
      expect(pool.held).toBe(0);
    } finally {
      await pool.close();
    }
    const restored = env.path('restored.img');
    expect(await sha256File(restored)).toBe(await sha256File(image));
    expect((await stat(restored)).blocks * 512).toBeLessThanOrEqual(95 * BLOCK); // not written: a hole
  });

  it('takes slots no larger than one extent when extents exceed restoreRangeBytes', async () => {
    const backup = await runBackup(env.deps, { projectId: 'p1', volumeId: 'vol', name: 'extents' }); // 4 MiB extents
    const pool = new CountingPool({ workers: 2 });
    try {
      env.addVolume('p1', 'restored-extents', { path: env.path('restored-extents.img') });
      await restoreBackup({ ...env.deps, pool }, { projectId: 'p1', backupId: backup.backupId, targetVolumeId: 'restored-extents' });
      expect(pool.largestRequest).toBeLessThanOrEqual(4 * MiB + SEAL_OVERHEAD);
      expect(pool.peakHeld).toBeLessThanOrEqual(2 * CONCURRENCY);
      expect(pool.held).toBe(0);
    } finally {
      await pool.close();
    }
    expect(await sha256File(env.path('restored-extents.img'))).toBe(await sha256File(image));
  });

  it('reads neighbouring ranges with one GET where the store prefers larger reads, plaintext slots unchanged', async () => {
    // Another project (its own key domain, so nothing deduplicates against the other tests' packs): a first
    // backup, its chunks in pack order.
    await copyFile(image, env.path('one-get.img'));
    env.addVolume('p2', 'vol', { path: env.path('one-get.img') });
    const backup = await runBackup(env.deps, { projectId: 'p2', volumeId: 'vol', name: 'one-get', extentBlocks: 1 });
    const preferred = 16 * MiB;
    const gets: number[] = [];
    const store = Object.assign(Object.create(env.deps.store) as typeof env.deps.store, {
      preferredReadBytes: preferred,
      getRange: (key: string, start: number, length: number, into?: Buffer) => {
        gets.push(length);
        return env.deps.store.getRange(key, start, length, into);
      },
    });
    const pool = new CountingPool({ workers: 2 });
    try {
      env.addVolume('p2', 'restored', { path: env.path('restored-one-get.img') });
      await restoreBackup({ ...env.deps, store, pool }, { projectId: 'p2', backupId: backup.backupId, targetVolumeId: 'restored' });
      // Three segments, each under 96 KiB of sealed chunks in one pack: one GET each, where a GET per range
      // (2 MiB of plaintext) would take eight per segment.
      expect(gets).toHaveLength(3);
      expect(pool.largestRequest).toBeLessThanOrEqual(RANGE); // the fetch fits a slot; plaintext slots stay RANGE
      expect(pool.peakHeld).toBeLessThanOrEqual(2 * CONCURRENCY);
      expect(pool.held).toBe(0);
    } finally {
      await pool.close();
    }
    expect(await sha256File(env.path('restored-one-get.img'))).toBe(await sha256File(image));
  });
});

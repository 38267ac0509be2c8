// Holes and changed ranges through the engine, on real sparse files and the embedded backend: a backup
// reads no hole and no block the reader says is unchanged since the parent's snapshot; a restore to a
// sparse target neither reads nor writes its holes, and leaves the backup's zeros as holes.
import { open, truncate, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupSegment, commitBackup, prepareBackup, runBackup } from '../../lib/engine/backup.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { EngineDeps } from '../../lib/engine/engine.ts';
import type { BackupRecord, BlockReader, BlockWriter, ByteRange, ReadSource, VolumeBlocks } from '../../lib/engine/ports.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import type { FileVolumeProviderOptions } from '../../lib/volumes/file-provider.ts';
import { createEngineDeps } from '../../lib/wiring/engine.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../support/disk-image.ts';
import { createRuntimeEnv } from '../support/runtime-env.ts';
import type { RuntimeEnv } from '../support/runtime-env.ts';
import { allocatedBytes, dataRangesOf, requireSeekmap, writeScattered } from '../support/sparse-image.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 512 * KiB;
const EXTENT_BLOCKS = 8;
const ENGINE = { segmentBlocks: 64, packTargetBytes: 4 * MiB };
const PROJECT = 'sparse-project';

/** The blocks that [offset, offset + length) touches. */
function blocksOf(r: ByteRange): number[] {
  const out: number[] = [];
  for (let b = Math.floor(r.offset / BLOCK); b * BLOCK < r.offset + r.length; b++) out.push(b);
  return out;
}

const overlaps = (a: ByteRange, b: ByteRange) => a.offset < b.offset + b.length && b.offset < a.offset + a.length;
const total = (ranges: ByteRange[]) => ranges.reduce((n, r) => n + r.length, 0);

/** File volumes by id, counting what the engine reads from volumes and targets; optionally offering changed ranges. */
class CountingVolumes implements VolumeBlocks {
  readonly files = new Map<string, string>();
  readonly reads: ByteRange[] = [];
  readonly targetReads: ByteRange[] = [];
  readonly sources: Array<ReadSource | undefined> = [];
  changedCalls = 0;
  /** What changedRanges answers (clipped to the window asked); undefined: the reader has no changedRanges. */
  changed: ByteRange[] | undefined;
  /** Drop the writer's discard (a target that cannot punch holes). */
  noDiscard = false;
  private readonly inner: FileVolumeProvider;

  constructor(options: FileVolumeProviderOptions = {}) {
    this.inner = new FileVolumeProvider(async (_p, id) => (this.files.has(id) ? { path: this.files.get(id)! } : undefined), options);
  }

  describe(projectId: string, volumeId: string) {
    return this.inner.describe(projectId, volumeId);
  }

  async openReader(projectId: string, volumeId: string, source?: ReadSource): Promise<BlockReader> {
    this.sources.push(source);
    const r = await this.inner.openReader(projectId, volumeId);
    const changed = this.changed;
    return {
      sizeBytes: r.sizeBytes,
      read: (into, offset) => {
        this.reads.push({ offset, length: into.length });
        return r.read(into, offset);
      },
      ...(r.writtenRanges ? { writtenRanges: r.writtenRanges } : {}),
      ...(changed
        ? {
            changedRanges: async (offset: number, length: number) => {
              this.changedCalls++;
              return changed.filter((c) => overlaps(c, { offset, length }));
            },
          }
        : {}),
      close: () => r.close(),
    };
  }

  async openWriter(projectId: string, volumeId: string, minSizeBytes: number): Promise<BlockWriter> {
    const w = await this.inner.openWriter(projectId, volumeId, minSizeBytes);
    const { discard, ...rest } = w;
    return {
      ...rest,
      sizeBytes: w.sizeBytes,
      zeroed: w.zeroed,
      read: (into, offset) => {
        this.targetReads.push({ offset, length: into.length });
        return w.read(into, offset);
      },
      ...(discard && !this.noDiscard ? { discard } : {}),
    };
  }
}

describe('sparse volumes through the engine', () => {
  let env: RuntimeEnv;
  let pool: ChunkPool;

  beforeAll(async () => {
    requireSeekmap();
    env = await createRuntimeEnv('embedded');
    pool = new ChunkPool({ workers: 1 });
  });

  afterAll(async () => {
    await pool?.close();
    await env?.close();
  });

  const engine = (volumes: VolumeBlocks): EngineDeps => createEngineDeps({ backend: env.backend, backups: env.stores.backups, volumes, pool, engine: ENGINE });

  it('never reads a hole: hole blocks are zero blocks, and the backup equals one that read everything', async () => {
    const size = 1024 * MiB;
    const src = env.path('holes.img');
    const pieces = await writeScattered(src, size, 12, 384 * KiB, 11); // some pieces straddle two blocks
    const dataBlocks = new Set(pieces.flatMap(blocksOf));
    const volumes = new CountingVolumes();
    volumes.files.set('holes', src);
    const deps = engine(volumes);

    const backup = await runBackup(deps, { projectId: PROJECT, volumeId: 'holes', name: 'sparse' });
    for (const r of volumes.reads) for (const b of blocksOf(r)) expect(dataBlocks.has(b)).toBe(true);
    expect(total(volumes.reads)).toBe(dataBlocks.size * BLOCK);
    expect(backup.stats!.zeroBlocks).toBe(size / BLOCK - dataBlocks.size);
    expect(backup.stats!.chunkCount).toBe(dataBlocks.size);

    // Reading every byte finds the very same chunks (all already stored) and counts the same.
    const plain = new CountingVolumes({ holes: null });
    plain.files.set('holes', src);
    const full = await runBackup(engine(plain), { projectId: PROJECT, volumeId: 'holes', name: 'read all', forceFull: true });
    expect(total(plain.reads)).toBe(size);
    expect(full.stats!.newChunks).toBe(0);
    expect(full.stats!.dedupHits).toBe(backup.stats!.newChunks + backup.stats!.dedupHits);
    for (const k of ['zeroBlocks', 'chunkCount', 'logicalBytes'] as const) expect(full.stats![k]).toBe(backup.stats![k]);

    volumes.files.set('restored', env.path('holes-restored.img'));
    await restoreBackup(deps, { projectId: PROJECT, backupId: backup.backupId, targetVolumeId: 'restored' });
    expect(await sha256File(env.path('holes-restored.img'))).toBe(await sha256File(src));
    // still sparse: about the data, not the 1 GiB (zero stretches of 64 KiB and more inside blocks are not written)
    expect(await allocatedBytes(env.path('holes-restored.img'))).toBeLessThanOrEqual(total(pieces) + pieces.length * 128 * KiB);
  });

  /** A backup as a server backup runs it: it reads snapshot `snapshotId`, set on the record before its segments. */
  async function backupOfSnapshot(deps: EngineDeps, volumeId: string, snapshotId: string): Promise<BackupRecord> {
    const rec = await prepareBackup(deps, { projectId: PROJECT, volumeId, name: snapshotId });
    await deps.catalog.updateBackup(PROJECT, rec.backupId, { sourceSnapshotId: snapshotId });
    for (let segment = 0; segment < rec.segmentCount; segment++) await backupSegment(deps, PROJECT, rec.backupId, segment);
    return commitBackup(deps, PROJECT, rec.backupId);
  }

  it('reads only what changed since the parent snapshot, reusing the parent for the rest', async () => {
    const size = 64 * MiB;
    const src = env.path('changing.img');
    await writeDiskImage(src, size, 21);
    const volumes = new CountingVolumes();
    volumes.files.set('changing', src);
    volumes.changed = [];
    const deps = engine(volumes);

    const first = await backupOfSnapshot(deps, 'changing', 'snap-1');
    expect(volumes.sources).toEqual([{ snapshotId: 'snap-1' }, { snapshotId: 'snap-1' }]); // no parent: nothing to compare with
    expect(volumes.changedCalls).toBe(0);

    const changedBlocks = await scatterWrites(src, size, BLOCK, 0.06, 5);
    volumes.changed = changedBlocks.map((b) => ({ offset: b * BLOCK, length: BLOCK }));
    volumes.reads.length = 0;
    volumes.sources.length = 0;
    const second = await backupOfSnapshot(deps, 'changing', 'snap-2');
    expect(second.parentId).toBe(first.backupId);
    expect(volumes.sources).toEqual([{ snapshotId: 'snap-2', sinceSnapshotId: 'snap-1' }, { snapshotId: 'snap-2', sinceSnapshotId: 'snap-1' }]);
    expect(volumes.changedCalls).toBe(2);
    // whole extents are read, and only those with a changed block
    const changedExtents = new Set(changedBlocks.map((b) => Math.floor(b / EXTENT_BLOCKS)));
    for (const r of volumes.reads) for (const b of blocksOf(r)) expect(changedExtents.has(Math.floor(b / EXTENT_BLOCKS))).toBe(true);
    expect(total(volumes.reads)).toBeLessThanOrEqual(changedExtents.size * EXTENT_BLOCKS * BLOCK);
    expect(second.stats!.reusedFromParent).toBeGreaterThan(first.stats!.chunkCount - changedExtents.size * EXTENT_BLOCKS);
    const secondSha = await sha256File(src);
    volumes.files.set('changing-2', env.path('changing-2.img'));
    await restoreBackup(deps, { projectId: PROJECT, backupId: second.backupId, targetVolumeId: 'changing-2' });
    expect(await sha256File(env.path('changing-2.img'))).toBe(secondSha);

    // A reader that says nothing changed is believed: nothing is read, and the backup is its parent's data.
    await scatterWrites(src, size, BLOCK, 0.06, 6);
    volumes.changed = [];
    volumes.reads.length = 0;
    const third = await backupOfSnapshot(deps, 'changing', 'snap-3');
    expect(volumes.reads).toEqual([]);
    expect(third.stats!.reusedFromParent).toBe(third.stats!.chunkCount);
    expect(third.stats!.newChunks).toBe(0);
    volumes.files.set('changing-3', env.path('changing-3.img'));
    await restoreBackup(deps, { projectId: PROJECT, backupId: third.backupId, targetVolumeId: 'changing-3' });
    expect(await sha256File(env.path('changing-3.img'))).toBe(secondSha);
  });

  it('reads whole volumes when the parent read no snapshot', async () => {
    const size = 16 * MiB;
    const src = env.path('live.img');
    await writeDiskImage(src, size, 31);
    const volumes = new CountingVolumes();
    volumes.files.set('live', src);
    volumes.changed = [];
    const deps = engine(volumes);
    await runBackup(deps, { projectId: PROJECT, volumeId: 'live', name: 'live' });
    volumes.reads.length = 0;
    await backupOfSnapshot(deps, 'live', 'snap-after-live');
    expect(volumes.changedCalls).toBe(0);
    expect(volumes.sources.at(-1)).toEqual({ snapshotId: 'snap-after-live' });
    expect(total(volumes.reads)).toBeGreaterThan(0);
  });

  describe.each([
    ['punches holes where the target holds data', false],
    ['writes zeros where the target holds data and cannot punch', true],
  ])('a restore to an existing sparse target %s', (_name, noDiscard) => {
    it('and reads none of its holes', async () => {
      const size = 256 * MiB;
      const tag = noDiscard ? 'zeros' : 'punch';
      const src = env.path(`sparse-src-${tag}.img`);
      const pieces = await writeScattered(src, size, 8, 256 * KiB, 41);
      const volumes = new CountingVolumes();
      volumes.noDiscard = noDiscard;
      volumes.files.set('src', src);
      const deps = engine(volumes);
      const backup = await runBackup(deps, { projectId: PROJECT, volumeId: 'src', name: tag });

      // The target exists: holes, other data where the backup has zeros, and data across a piece's edge.
      const target = env.path(`sparse-target-${tag}.img`);
      await writeFile(target, '');
      await truncate(target, size);
      const garbage: ByteRange[] = [
        { offset: 100 * MiB, length: 2 * MiB },
        { offset: Math.max(0, pieces[3]!.offset - 64 * KiB), length: 1 * MiB },
      ].sort((a, b) => a.offset - b.offset);
      const fh = await open(target, 'r+');
      for (const g of garbage) await fh.write(Buffer.alloc(g.length, 0xcd), 0, g.length, g.offset);
      await fh.close();

      volumes.files.set('target', target);
      await restoreBackup(deps, { projectId: PROJECT, backupId: backup.backupId, targetVolumeId: 'target' });
      expect(await sha256File(target)).toBe(await sha256File(src));
      if (noDiscard) {
        // what was read back lies where the target held data, never in its holes
        expect(volumes.targetReads.length).toBeGreaterThan(0);
        for (const r of volumes.targetReads) expect(garbage.some((g) => overlaps(r, g))).toBe(true);
      } else {
        expect(volumes.targetReads).toEqual([]);
        // the data only the target held is a hole again
        const data = await dataRangesOf(target);
        expect(data.some((r) => overlaps(r, garbage.find((g) => g.offset === 100 * MiB)!))).toBe(false);
        expect(total(data)).toBeLessThanOrEqual(total(pieces) + pieces.length * 128 * KiB + 1 * MiB);
      }
    });
  });
});

// The end-to-end engine runs, on one backend: a full backup of a disk-like image, an incremental after
// in-place writes to 1% of its blocks, and a restore of the incremental to a new image, checked bit-exact
// by SHA-256. Also a full backup with in-memory object store and chunk index (the engine without storage
// costs). Every port is timed (meters.ts); page cache writeback is flushed before each phase, so a phase
// does not pay for the previous one's dirty pages.
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runBackup } from '../../lib/engine/backup.ts';
import type { EngineDeps } from '../../lib/engine/engine.ts';
import type { BackupStats, ChunkIndex, ObjectStore } from '../../lib/engine/ports.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import { createEngineDeps } from '../../lib/wiring/engine.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../../test/support/disk-image.ts';
import { MemoryChunkIndex, MemoryObjectStore } from '../../test/support/memory-ports.ts';
import type { BenchBackend } from './backends.ts';
import { timedIndex, timedStore, timedVolumes } from './meters.ts';
import type { Instruments, PhaseResult, TimedPool } from './meters.ts';

export interface ImageSpec {
  path: string;
  sizeBytes: number;
  seed: number;
}

export interface ScenarioContext {
  instruments: Instruments;
  pool: TimedPool;
  /** Scratch folder for the restored image. */
  dir: string;
  image: ImageSpec;
  /** Fraction of the blocks the incremental's in-place writes touch. */
  changeFraction: number;
}

export interface ObjectCount {
  count: number;
  bytes: number;
}

export interface ScenarioResult {
  full: PhaseResult;
  incremental: PhaseResult;
  restore: PhaseResult;
  fullStats: BackupStats;
  incrementalStats: BackupStats;
  changedBlocks: number;
  /** Scatter writes plus the SHA-256 of the changed image. */
  changeMs: number;
  restoredBytes: number;
  restoreOk: boolean;
  /** What the store holds after both backups. */
  stored: { packs: ObjectCount; manifests: ObjectCount };
}

/** Writes the benchmark image afresh (the incremental scenario changes it); returns the time taken. */
export async function writeImage(image: ImageSpec): Promise<number> {
  const t0 = performance.now();
  await writeDiskImage(image.path, image.sizeBytes, image.seed);
  return performance.now() - t0;
}

/** Flushes dirty pages, so the next phase starts from a quiet disk. */
const settle = () => execFileSync('sync');

function engineDeps(target: BenchBackend, ctx: ScenarioContext, files: ReadonlyMap<string, string>, ports?: { store: ObjectStore; index: ChunkIndex }): EngineDeps {
  const deps = createEngineDeps({
    backend: target.backend,
    backups: target.backups,
    volumes: timedVolumes(files, ctx.instruments),
    pool: ctx.pool,
    wrapStore: (s) => timedStore(ports?.store ?? s, ctx.instruments),
  });
  return { ...deps, index: timedIndex(ports?.index ?? deps.index, ctx.instruments) };
}

async function countObjects(store: ObjectStore, prefix: string): Promise<ObjectCount> {
  let count = 0;
  let bytes = 0;
  for await (const o of store.list(prefix)) {
    count++;
    bytes += o.size;
  }
  return { count, bytes };
}

/**
 * A full backup with the object store and chunk index in memory; the catalog and keys are the backend's
 * (a project of its own, so nothing deduplicates against other runs).
 */
export async function runInMemoryFull(target: BenchBackend, ctx: ScenarioContext): Promise<{ phase: PhaseResult; stats: BackupStats }> {
  const deps = engineDeps(target, ctx, new Map([['src', ctx.image.path]]), { store: new MemoryObjectStore(), index: new MemoryChunkIndex() });
  let stats!: BackupStats;
  settle();
  const phase = await ctx.instruments.phase(ctx.pool.size, async () => {
    stats = (await runBackup(deps, { projectId: 'bench-memory', volumeId: 'src', name: 'full-in-memory' })).stats!;
  });
  return { phase, stats };
}

/** Full backup, incremental, restore of the incremental, on a freshly written image. */
export async function runScenarios(target: BenchBackend, ctx: ScenarioContext): Promise<ScenarioResult> {
  const restored = join(ctx.dir, `restore-${target.kind}.img`);
  const deps = engineDeps(target, ctx, new Map([['src', ctx.image.path], ['dst', restored]]));
  const { instruments, pool } = ctx;

  let full!: Awaited<ReturnType<typeof runBackup>>;
  settle();
  const fullPhase = await instruments.phase(pool.size, async () => {
    full = await runBackup(deps, { projectId: 'bench', volumeId: 'src', name: 'full' });
  });

  const t = performance.now();
  const changed = await scatterWrites(ctx.image.path, ctx.image.sizeBytes, deps.config.blockSize, ctx.changeFraction, ctx.image.seed + 1);
  const changedSha = await sha256File(ctx.image.path);
  const changeMs = performance.now() - t;

  let incremental!: Awaited<ReturnType<typeof runBackup>>;
  settle();
  const incrementalPhase = await instruments.phase(pool.size, async () => {
    incremental = await runBackup(deps, { projectId: 'bench', volumeId: 'src', name: 'incremental' });
  });
  if (incremental.parentId !== full.backupId) throw new Error('the second backup is not an incremental of the first');

  let restoredBytes = 0;
  settle();
  const restorePhase = await instruments.phase(pool.size, async () => {
    restoredBytes = (await restoreBackup(deps, { projectId: 'bench', backupId: incremental.backupId, targetVolumeId: 'dst' })).bytesWritten;
  });
  const restoreOk = (await sha256File(restored)) === changedSha;
  await rm(restored, { force: true });

  return {
    full: fullPhase,
    incremental: incrementalPhase,
    restore: restorePhase,
    fullStats: full.stats!,
    incrementalStats: incremental.stats!,
    changedBlocks: changed.length,
    changeMs,
    restoredBytes,
    restoreOk,
    stored: { packs: await countObjects(target.backend.objects, 'packs/'), manifests: await countObjects(target.backend.objects, 'manifests/') },
  };
}

// node bench/stored-bytes.ts — what OpenVBS stores against restic, and what compression costs.
//
// 1. The race's two images (bench/race/images.ts): the disk-like image with 4 KiB writes scattered over 1%
//    of its blocks, and an ext4 image of real files with about 1% of its files changed in place.
// 2. How far each change spreads: changed 4 KiB pages, 512 KiB blocks and sub-chunks of each size tried.
// 3. restic (pinned, scripts/restic.mjs), default compression: a full and an incremental backup into a
//    fresh repository in a folder; stored bytes = the repository's files.
// 4. The OpenVBS engine on the embedded backend, a fresh home per sub-chunk size: a full and an incremental
//    backup; stored bytes = the objects (packs and manifests), manifests also on their own.
// 5. Compression alone, on one core, over each image's non-zero data: zstd levels 1-3 and the chunks'
//    parameters (CHUNK_ZSTD_PARAMS) on 512 KiB to 4 MiB units, plus a per-unit adaptive rule;
//    the per-call cost of zstdCompressSync by input size against one reused stream flushed per frame; and
//    what recognising incompressible data costs (zstd's own fast path against sampling first).
// MB = 10^6 bytes. Timings are wall clock on a shared machine: compare within a run.
//
// Env: BENCH_IMAGES (default "disk,ext4"), BENCH_SIZE_MIB (each image, default 2048), BENCH_SEED (2026),
//      BENCH_SUB_KIB (sub-chunk sizes, default "8,16,32,64,128"; empty skips OpenVBS), BENCH_RESTIC=0 skips restic,
//      BENCH_ZSTD=0 skips part 5, BENCH_WORK_DIR keeps the images there and reuses them on the next run.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { constants as zc, createZstdCompress, zstdCompressSync } from 'node:zlib';
import { installRestic } from '../scripts/restic.mjs';
import { DEFAULT_EXTENT_BLOCKS, runBackup } from '../lib/engine/backup.ts';
import { CHUNK_ZSTD_PARAMS, isAllZero } from '../lib/engine/chunk-codec.ts';
import type { BackupStats, ObjectStore } from '../lib/engine/ports.ts';
import { FileVolumeProvider } from '../lib/volumes/file-provider.ts';
import { createEngineDeps } from '../lib/wiring/engine.ts';
import { openBenchBackend } from './lib/backends.ts';
import { f0, f1, f2, mb, MiB, rate } from './lib/units.ts';
import { releaseMounts, prepareDiskImage, prepareExt4Image } from './race/images.ts';
import type { ImageKind, RaceImage } from './race/images.ts';
import { resticContestant, VOLUME_FILE } from './race/contestants.ts';

const KIB = 1024;
const BLOCK = 512 * KIB;
const SIZE = Math.round(Number(process.env.BENCH_SIZE_MIB ?? 2048) * MiB);
const SEED = Number(process.env.BENCH_SEED ?? 2026);
const IMAGES = (process.env.BENCH_IMAGES ?? 'disk,ext4').split(',').map((s) => s.trim()) as ImageKind[];
const SUB_SIZES = (process.env.BENCH_SUB_KIB ?? '8,16,32,64,128').split(',').filter(Boolean).map((s) => Number(s) * KIB);
const RUN_RESTIC = process.env.BENCH_RESTIC !== '0';
const RUN_ZSTD = process.env.BENCH_ZSTD !== '0';
const WORK_DIR = process.env.BENCH_WORK_DIR;

const log = (line = '') => console.log(line);
const pct = (a: number, b: number) => (b ? `${f2(a / b)}x` : '-');

// ---- images and how far their change spreads ----

async function image(kind: ImageKind, dir: string): Promise<RaceImage> {
  const saved = join(dir, `${kind}.json`);
  if (WORK_DIR && existsSync(saved)) return JSON.parse(await readFile(saved, 'utf8')) as RaceImage;
  await mkdir(dir, { recursive: true });
  const made = kind === 'disk' ? await prepareDiskImage(dir, SIZE, SEED) : await prepareExt4Image(dir, SIZE, SEED, 'auto', (l) => log(l));
  await writeFile(saved, JSON.stringify(made));
  return made;
}

/** Units of each size that differ between the two images, and those of them that are non-zero afterwards. */
async function spread(img: RaceImage, sizes: number[]): Promise<Map<number, { changed: number; nonZero: number }>> {
  const counts = new Map(sizes.map((s) => [s, { changed: 0, nonZero: 0 }]));
  const [a, b] = await Promise.all([open(img.base, 'r'), open(img.changed, 'r')]);
  const bufA = Buffer.alloc(16 * BLOCK);
  const bufB = Buffer.alloc(16 * BLOCK);
  try {
    for (let at = 0; at < img.sizeBytes; at += bufA.length) {
      const len = Math.min(bufA.length, img.sizeBytes - at);
      await Promise.all([a.read(bufA, 0, len, at), b.read(bufB, 0, len, at)]);
      if (bufA.compare(bufB, 0, len, 0, len) === 0) continue;
      for (const [size, c] of counts) {
        for (let u = 0; u < len; u += size) {
          const end = Math.min(len, u + size);
          if (bufA.compare(bufB, u, end, u, end) === 0) continue;
          c.changed++;
          if (!isAllZero(bufB.subarray(u, end))) c.nonZero++;
        }
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return counts;
}

// ---- restic and OpenVBS ----

interface Stored {
  fullBytes: number;
  incrementalBytes: number;
  fullS: number;
  incrementalS: number;
  manifestBytes?: number;
  incrementalStats?: BackupStats;
}

async function resticStored(bin: string, img: RaceImage, dir: string): Promise<Stored> {
  const repo = await resticContestant(bin)({ kind: 'fs' }, dir, 'stored');
  const volumeDir = join(dir, 'volume');
  await mkdir(volumeDir, { recursive: true });
  const volume = join(volumeDir, VOLUME_FILE);
  try {
    const phase = async (source: string, name: string) => {
      // A hard link: the image under the name restic backs up, without a copy (a new inode, so a rescan).
      await rm(volume, { force: true });
      await link(source, volume);
      const r = await repo.backup(volumeDir, name);
      return { s: r.timing.wallS, bytes: (await repo.use()).bytes };
    };
    const full = await phase(img.base, 'full');
    const incremental = await phase(img.changed, 'incremental');
    return { fullBytes: full.bytes, incrementalBytes: incremental.bytes - full.bytes, fullS: full.s, incrementalS: incremental.s };
  } finally {
    await repo.dispose();
    await rm(volumeDir, { recursive: true, force: true });
  }
}

async function objectBytes(store: ObjectStore, prefix: string): Promise<number> {
  let bytes = 0;
  for await (const o of store.list(prefix)) bytes += o.size;
  return bytes;
}

/** A full backup of the base image and an incremental of the changed one, on a fresh embedded home. */
async function openvbsStored(img: RaceImage, dir: string, subChunkSize: number): Promise<Stored> {
  const target = await openBenchBackend('embedded', dir);
  let path = img.base;
  const deps = createEngineDeps({ backend: target.backend, backups: target.backups, volumes: new FileVolumeProvider(async () => ({ path })) });
  const store = target.backend.objects;
  try {
    const backup = async (name: string) => {
      const t = performance.now();
      const rec = await runBackup(deps, { projectId: 'bench', volumeId: 'vol', name, subChunkSize });
      return { rec, s: (performance.now() - t) / 1000, objects: await objectBytes(store, ''), manifests: await objectBytes(store, 'manifests/') };
    };
    const full = await backup('full');
    path = img.changed;
    const incremental = await backup('incremental');
    if (incremental.rec.parentId !== full.rec.backupId) throw new Error('the second backup is not an incremental of the first');
    return {
      fullBytes: full.objects,
      incrementalBytes: incremental.objects - full.objects,
      fullS: full.s,
      incrementalS: incremental.s,
      manifestBytes: incremental.manifests - full.manifests,
      incrementalStats: incremental.rec.stats,
    };
  } finally {
    await deps.pool.close();
    await target.close();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- compression alone ----

const LEVELS: Array<[string, Record<number, number>]> = [
  ['zstd 1', { [zc.ZSTD_c_compressionLevel]: 1 }],
  ['zstd 2', { [zc.ZSTD_c_compressionLevel]: 2 }],
  ['zstd 3', { [zc.ZSTD_c_compressionLevel]: 3 }],
  ['chunks (fast h16 m5)', CHUNK_ZSTD_PARAMS],
];

/** Non-zero units of `unit` bytes of the image (every `every`-th, to bound the time). */
async function units(path: string, sizeBytes: number, unit: number, every = 1): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const fh = await open(path, 'r');
  try {
    for (let at = 0, i = 0; at < sizeBytes; at += unit, i++) {
      if (i % every) continue;
      const buf = Buffer.alloc(Math.min(unit, sizeBytes - at));
      await fh.read(buf, 0, buf.length, at);
      if (!isAllZero(buf)) out.push(buf);
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** Stored bytes (raw when zstd does not shrink a unit, plus the 29-byte seal) and the best of two timings. */
function compressAll(data: Buffer[], compress: (b: Buffer) => number): { bytes: number; ms: number } {
  let best = Infinity;
  let bytes = 0;
  for (let round = 0; round < 2; round++) {
    bytes = 0;
    const t = performance.now();
    for (const b of data) bytes += Math.min(b.length, compress(b)) + 29;
    best = Math.min(best, performance.now() - t);
  }
  return { bytes, ms: best };
}

const zstdSize = (params: Record<number, number>) => (b: Buffer) => zstdCompressSync(b, { chunkSize: b.length + 64 * KIB, params }).length;

/** Level 3 where a 64 KiB sample compresses below half at level 1, else level 1. */
function adaptive(b: Buffer): number {
  const sample = zstdSize(LEVELS[0]![1])(b.subarray(0, 64 * KIB));
  return zstdSize(sample < 32 * KIB ? LEVELS[2]![1] : LEVELS[0]![1])(b);
}

async function compressionTable(img: RaceImage): Promise<string[]> {
  const lines = [`  ${'unit'.padEnd(8)} ${'compressor'.padEnd(27)} ${'stored MB'.padStart(10)} ${'MB/s'.padStart(6)}`];
  for (const unit of [BLOCK, 2 * BLOCK, 4 * BLOCK, 8 * BLOCK]) {
    const data = await units(img.base, img.sizeBytes, unit);
    const logical = data.reduce((n, b) => n + b.length, 0);
    const rows: Array<[string, (b: Buffer) => number]> = [...LEVELS.map(([name, params]) => [name, zstdSize(params)] as [string, (b: Buffer) => number]), ['adaptive (sample: 1 or 3)', adaptive]];
    for (const [name, compress] of rows) {
      const r = compressAll(data, compress);
      lines.push(`  ${`${unit / KIB} KiB`.padEnd(8)} ${name.padEnd(27)} ${f1(mb(r.bytes)).padStart(10)} ${f0(rate(logical, r.ms)).padStart(6)}`);
    }
  }
  return lines;
}

async function perCallTable(img: RaceImage): Promise<string[]> {
  const data = Buffer.concat((await units(img.base, img.sizeBytes, BLOCK, 4)).slice(0, 128));
  const lines = [`  zstdCompressSync at the chunks' parameters, by input size (${f0(mb(data.length))} MB of the image's non-zero data):`];
  const params = CHUNK_ZSTD_PARAMS;
  const timeCalls = (size: number) => {
    let best = Infinity;
    const calls = Math.floor(data.length / size);
    for (let round = 0; round < 2; round++) {
      const t = performance.now();
      for (let i = 0; i < calls; i++) zstdCompressSync(data.subarray(i * size, (i + 1) * size), { chunkSize: size + 64 * KIB, params });
      best = Math.min(best, performance.now() - t);
    }
    return { us: (best * 1000) / calls, mbps: rate(calls * size, best) };
  };
  const tiny = timeCalls(64);
  lines.push(`    64 B: ${f1(tiny.us)} us a call (the fixed cost: context, options, output buffer)`);
  for (const size of [16, 32, 64, 128, 256, 512].map((k) => k * KIB)) {
    const r = timeCalls(size);
    lines.push(`    ${`${size / KIB} KiB`.padStart(7)}: ${f1(r.us).padStart(7)} us a call, ${f0(r.mbps).padStart(4)} MB/s; fixed cost ${f0((100 * tiny.us) / r.us)}% of a call`);
  }
  for (const size of [64 * KIB, BLOCK]) {
    // One context for every frame: write a unit, then end its frame (each frame decodes on its own).
    const z = createZstdCompress({ params });
    z.on('data', () => {});
    const t = performance.now();
    for (let at = 0; at + size <= data.length; at += size) {
      z.write(data.subarray(at, at + size));
      await new Promise<void>((resolve) => z.flush(zc.ZSTD_e_end, () => resolve()));
    }
    const ms = performance.now() - t;
    z.close();
    lines.push(`    reused createZstdCompress, flush(ZSTD_e_end) per ${size / KIB} KiB frame: ${f0(rate(data.length, ms))} MB/s (async: each flush is a thread-pool round trip)`);
  }
  const random = randomBytes(64 * BLOCK);
  const rawRate = (compress: (b: Buffer) => number) => {
    const t = performance.now();
    for (let at = 0; at < random.length; at += BLOCK) compress(random.subarray(at, at + BLOCK));
    return rate(random.length, performance.now() - t);
  };
  lines.push(
    `  incompressible 512 KiB blocks: zstd gives up on them at ${f0(rawRate(zstdSize(params)))} MB/s; a level-1 sample of 4 x 8 KiB ` +
      `(to decide before compressing) alone runs at ${f0(rawRate((b) => [0, 1, 2, 3].reduce((n, i) => n + zstdSize(LEVELS[0]![1])(b.subarray(i * 128 * KIB, i * 128 * KIB + 8 * KIB)), 0)))} MB/s of blocks`,
  );
  return lines;
}

// ---- main ----

async function main() {
  const dir = WORK_DIR ?? (await mkdtemp(join(tmpdir(), 'openvbs-bench-stored-')));
  const restic = RUN_RESTIC ? installRestic({ quiet: true }) : undefined;
  log(`OpenVBS stored bytes — node ${process.version}; images ${IMAGES.join(', ')} of ${f0(SIZE / MiB)} MiB, seed ${SEED}; restic ${restic?.version ?? 'skipped'}; extents of ${DEFAULT_EXTENT_BLOCKS} blocks`);
  try {
    for (const kind of IMAGES) {
      const img = await image(kind, join(dir, kind));
      log();
      log(`${img.label}`);
      for (const line of img.description) log(`  ${line}`);
      const counts = await spread(img, [4 * KIB, ...SUB_SIZES, BLOCK]);
      log(`  changed units (non-zero after): ${[...counts].map(([s, c]) => `${s / KIB} KiB ${c.changed} (${c.nonZero}) = ${f1(mb(c.changed * s))} MB`).join('; ')}`);

      const bar = restic ? await resticStored(restic.path, img, join(dir, `${kind}-restic`)) : undefined;
      log();
      log(`  ${'tool'.padEnd(22)} ${'full MB'.padStart(8)} ${'÷ restic'.padStart(8)} ${'incr MB'.padStart(8)} ${'÷ restic'.padStart(8)} ${'manifests'.padStart(9)} ${'full s'.padStart(7)} ${'incr s'.padStart(7)}  incremental's chunks`);
      if (bar) log(`  ${'restic (auto)'.padEnd(22)} ${f1(mb(bar.fullBytes)).padStart(8)} ${''.padStart(8)} ${f1(mb(bar.incrementalBytes)).padStart(8)} ${''.padStart(8)} ${''.padStart(9)} ${f1(bar.fullS).padStart(7)} ${f1(bar.incrementalS).padStart(7)}`);
      for (const sub of SUB_SIZES) {
        const r = await openvbsStored(img, join(dir, `${kind}-openvbs-${sub}`), sub);
        const s = r.incrementalStats!;
        log(
          `  ${`OpenVBS sub ${sub / KIB} KiB`.padEnd(22)} ${f1(mb(r.fullBytes)).padStart(8)} ${(bar ? pct(r.fullBytes, bar.fullBytes) : '-').padStart(8)} ` +
            `${f1(mb(r.incrementalBytes)).padStart(8)} ${(bar ? pct(r.incrementalBytes, bar.incrementalBytes) : '-').padStart(8)} ${f1(mb(r.manifestBytes!)).padStart(9)} ` +
            `${f1(r.fullS).padStart(7)} ${f1(r.incrementalS).padStart(7)}  ${s.newChunks - s.newSubChunks!} extents + ${s.newSubChunks} sub-chunks new, ${s.reusedSubChunks} sub-chunks and ${s.reusedFromParent} blocks reused`,
        );
      }
      if (RUN_ZSTD) {
        log();
        log(`  compression alone, one core, over the base image's non-zero units:`);
        for (const line of await compressionTable(img)) log(line);
        for (const line of await perCallTable(img)) log(line);
      }
    }
  } finally {
    await releaseMounts();
    if (!WORK_DIR) await rm(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}

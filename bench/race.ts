// npm run bench:race — OpenVBS against restic on the same machine and the same storage.
//
// 1. restic, pinned, from scripts/restic.mjs (go install into .cache/restic, or Debian's package without Go).
// 2. Images, made on the spot in a temporary folder (bench/race/images.ts): the engine bench's disk-like
//    image with 4 KiB writes in 1% of its blocks; an ext4 image of real files from this machine with about
//    1% of its files changed in place (loop mount, or debugfs where mounting does not work).
// 3. For each image and storage — the local filesystem (OpenVBS embedded home vs a restic repository in a
//    folder) and the S3 emulator (one moto: OpenVBS's AWS backend vs restic's s3 backend) — rounds
//    interleaved restic, OpenVBS, restic, ..., each on a fresh repository: full backup, incremental,
//    restore of the incremental checked by SHA-256. The page cache is dropped before each phase; each phase
//    is a child under /usr/bin/time (wall, user+sys CPU, peak RSS measured alike for both).
// 4. A table per (image × storage): medians and OpenVBS ÷ restic, stored bytes; then one JSON line. A restore
//    that differs from its image fails the race. The emulator, children, mounts and the temporary folder are
//    removed on any exit.
//
// Env: BENCH_SIZE_MIB (disk-like image, default 2048), BENCH_EXT4_MIB (ext4 image, default 2048),
//      BENCH_ROUNDS (per tool, default 3), BENCH_STORAGES (default "fs,s3"), BENCH_IMAGES (default
//      "disk,ext4"), BENCH_SEED (default 2026), BENCH_EXT4_CHANGE (auto | mount | debugfs; default auto).
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { installRestic } from '../scripts/restic.mjs';
import { f0, f1, f2, mb, MiB } from './lib/units.ts';
import { dropPageCache, refuseNewChildren, stopChildren } from './race/children.ts';
import { openvbsContestant, resticContestant, STORAGE_KINDS } from './race/contestants.ts';
import type { OpenRepository, Storage, StorageKind, ToolName } from './race/contestants.ts';
import { IMAGE_KINDS, prepareDiskImage, prepareExt4Image, releaseMounts } from './race/images.ts';
import type { Ext4ChangeMethod, ImageKind, RaceImage } from './race/images.ts';
import { allRestoresEqual, raceJson, raceTable } from './race/report.ts';
import type { Rounds } from './race/report.ts';
import { runRound } from './race/rounds.ts';
import type { S3Side } from './race/s3.ts';

function listFromEnv<T extends string>(name: string, allowed: readonly T[]): T[] {
  const raw = process.env[name];
  const items = (raw ?? allowed.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${name}: unknown ${JSON.stringify(item)}; one or more of ${allowed.join(', ')}`);
  return items as T[];
}

function positiveFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}

const DISK_BYTES = Math.round(positiveFromEnv('BENCH_SIZE_MIB', 2048) * MiB);
const EXT4_BYTES = Math.round(positiveFromEnv('BENCH_EXT4_MIB', 2048) * MiB);
const ROUNDS = Math.round(positiveFromEnv('BENCH_ROUNDS', 3));
const STORAGES = listFromEnv<StorageKind>('BENCH_STORAGES', STORAGE_KINDS);
const IMAGES = listFromEnv<ImageKind>('BENCH_IMAGES', IMAGE_KINDS);
const SEED = positiveFromEnv('BENCH_SEED', 2026);
const EXT4_CHANGE = (process.env.BENCH_EXT4_CHANGE ?? 'auto') as Ext4ChangeMethod;
if (!['auto', 'mount', 'debugfs'].includes(EXT4_CHANGE)) throw new Error('BENCH_EXT4_CHANGE: auto, mount or debugfs');
const CORES = availableParallelism();

const log = (line = '') => console.log(line);
const load = () => loadavg().map(f2).join(' ');

const cleanups: Array<() => Promise<unknown>> = [];
let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of cleanups.reverse()) await c().catch((err) => console.error(`cleanup: ${(err as Error).message}`));
}
// On a signal, no new child starts and the running ones stop; the race then unwinds through its own
// cleanup (each round removes its repository, then the emulator, mounts and temporary folder go).
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping the children and the emulator, removing the temporary files`);
    refuseNewChildren();
    void stopChildren();
    // Should the race not unwind by itself (stuck on I/O), clean up anyway.
    setTimeout(() => void cleanup().finally(() => process.exit(130)), 60_000).unref();
  });
}
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err) => {
    console.error(`${event}:`, err);
    void cleanup().finally(() => process.exit(1));
  });
}

async function prepareImage(kind: ImageKind, dir: string): Promise<RaceImage> {
  if (kind === 'disk') return prepareDiskImage(dir, DISK_BYTES, SEED);
  return prepareExt4Image(dir, EXT4_BYTES, SEED, EXT4_CHANGE, log);
}

function roundLine(tag: string, round: number, tool: ToolName, r: Awaited<ReturnType<typeof runRound>>): string {
  return (
    `  [${tag}] round ${round}/${ROUNDS} ${tool.padEnd(7)}: full ${f1(r.full.timing.wallS)} s, incremental ${f1(r.incremental.timing.wallS)} s, ` +
    `restore ${f1(r.restore.timing.wallS)} s (+ sync ${f1(r.restore.syncS)} s), SHA-256 ${r.restore.sha256Equal ? 'equal' : 'DIFFERENT'}; ` +
    `stored ${f1(mb(r.full.storedBytes))} + ${f1(mb(r.incremental.storedBytes))} MB; load ${load()}`
  );
}

async function main() {
  const restic = installRestic({ quiet: false });
  const largest = Math.max(IMAGES.includes('disk') ? DISK_BYTES : 0, IMAGES.includes('ext4') ? EXT4_BYTES : 0);
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-race-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  cleanups.push(releaseMounts);
  cleanups.push(stopChildren);
  // Base, changed and restored image, two repositories, staging: about six images' worth at the peak.
  const fsStat = await statfs(dir);
  if (fsStat.bavail * fsStat.bsize < 6 * largest) throw new Error(`${dir} has ${f0(mb(fsStat.bavail * fsStat.bsize))} MB free; the race needs about ${f0(mb(6 * largest))} MB`);

  const canDrop = await dropPageCache();
  log(
    `OpenVBS vs restic ${restic.version} (${restic.source === 'debian' ? "Debian's package" : 'built with go install'}, ${restic.path}) — node ${process.version}, ` +
      `${CORES} cores (${cpus()[0]?.model ?? 'unknown'}); images ${IMAGES.join(', ')}; storages ${STORAGES.join(', ')}; ${ROUNDS} rounds per tool; MB = 10^6 B`,
  );
  log(
    `page cache: ${canDrop ? 'dropped before each phase (sync; echo 3 > /proc/sys/vm/drop_caches)' : 'CANNOT be dropped here (needs root and a writable /proc/sys/vm/drop_caches); only sync before each phase, so phases may read cached data'}; ` +
      `restic: compression auto, restore without --sparse (its defaults); OpenVBS: bundled by esbuild as npm start runs it, default chunk workers (${CORES}); load average at start ${load()}`,
  );

  let s3: S3Side | undefined;
  if (STORAGES.includes('s3')) {
    const { startS3Side } = await import('./race/s3.ts');
    s3 = await startS3Side();
    const side = s3;
    cleanups.push(() => side.stop());
    log(`S3 emulator: moto on ${s3.endpoint}`);
  }
  const contestants: Array<{ tool: ToolName; open: OpenRepository }> = [
    { tool: 'restic', open: resticContestant(restic.path) },
    { tool: 'openvbs', open: openvbsContestant },
  ];

  const results: Array<{ image: RaceImage; loadBefore: number[]; loadAfter: number[]; storages: Array<{ kind: StorageKind; rounds: Rounds }> }> = [];
  for (const kind of IMAGES) {
    log();
    log(`preparing the ${kind} image...`);
    const image = await prepareImage(kind, dir);
    for (const line of image.description) log(`  ${line}`);
    const loadBefore = loadavg();
    log(`  load average before: ${load()}`);
    const storages: Array<{ kind: StorageKind; rounds: Rounds }> = [];
    for (const storageKind of STORAGES) {
      const storage: Storage = storageKind === 's3' ? { kind: 's3', s3: s3! } : { kind: 'fs' };
      const rounds: Rounds = { restic: [], openvbs: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        for (const c of contestants) {
          const r = await runRound({ tool: c.tool, open: c.open, storage, image, round, dir });
          rounds[c.tool].push(r);
          log(roundLine(`${kind} × ${storageKind}`, round, c.tool, r));
        }
      }
      storages.push({ kind: storageKind, rounds });
    }
    const loadAfter = loadavg();
    log(`  load average after: ${load()}`);
    await rm(image.base, { force: true });
    await rm(image.changed, { force: true });
    results.push({ image, loadBefore, loadAfter, storages });
  }

  log();
  for (const { image, loadBefore, loadAfter, storages } of results) {
    for (const { kind, rounds } of storages) {
      for (const line of raceTable(image.label, kind, rounds)) log(line);
      log(`  machine: ${CORES} cores; load average before the image ${loadBefore.map(f2).join(' ')}, after ${loadAfter.map(f2).join(' ')}`);
      log();
    }
  }
  log(
    JSON.stringify({
      bench: 'race',
      restic,
      node: process.version,
      cores: CORES,
      cpu: cpus()[0]?.model ?? null,
      rounds: ROUNDS,
      pageCacheDropped: canDrop,
      images: results.map(({ image, loadBefore, loadAfter, storages }) => ({
        kind: image.kind,
        label: image.label,
        sizeBytes: image.sizeBytes,
        description: image.description,
        change: image.change,
        diff: image.diff,
        loadBefore,
        loadAfter,
        storages: Object.fromEntries(storages.map(({ kind, rounds }) => [kind, raceJson(rounds)])),
      })),
    }),
  );
  const failed = results.flatMap(({ image, storages }) => storages.filter((s) => !allRestoresEqual(s.rounds)).map((s) => `${image.kind} × ${s.kind}`));
  if (failed.length) throw new Error(`a restored image differs from its source on ${failed.join(', ')}`);
}

try {
  await main();
} catch (err) {
  if (interrupted) console.error(`interrupted: ${(err as Error).message.split('\n')[0]}`);
  else console.error(err);
  process.exitCode = interrupted ? 130 : 1;
} finally {
  await cleanup();
}

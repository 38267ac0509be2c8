// node bench/restore.ts <mode> <dir> — one engine operation per process, so a process's peak RSS and CPU
// are those of that operation alone (what a Lambda or a race against another tool sees).
//
//   prepare <dir>   writes the bench's disk-like image to <dir>/source.img (BENCH_SIZE_MIB, default 2048;
//                   BENCH_SEED, default 2026) and its SHA-256 to <dir>/source.sha256
//   backup <dir>    a full backup of source.img into the embedded home <dir>/home; the id goes to <dir>/backup-id
//   restore <dir>   restores that backup to a new sparse image <dir>/restored.img (an earlier one is removed
//                   first); BENCH_CHECK=1 then compares its SHA-256 with the source's (outside the figures)
//
// BENCH_DROP_CACHES=1 flushes and drops the page cache before the operation (needs root). BENCH_METERS=1
// times every port call (bench/lib/meters.ts) and prints where the time went; leave it off for peak RSS.
// Prints one line: wall seconds, process CPU seconds by thread kind, peak RSS (the kernel's high-water
// mark, as /usr/bin/time reports it) and bytes written; then the same as JSON.
import { rm, readFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runBackup } from '../lib/engine/backup.ts';
import { restoreBackup } from '../lib/engine/restore.ts';
import { FileVolumeProvider } from '../lib/volumes/file-provider.ts';
import { createEngineDeps } from '../lib/wiring/engine.ts';
import { openRuntime } from '../lib/wiring/runtime.ts';
import type { EngineDeps } from '../lib/engine/engine.ts';
import { sha256File, writeDiskImage } from '../test/support/disk-image.ts';
import { threadCpuDelta, threadTicks, trackPoolThreads } from './lib/cpu-accounting.ts';
import { BACKUP_STAGES, Instruments, RESTORE_STAGES, TimedPool, timedIndex, timedStore, timedVolumes } from './lib/meters.ts';
import { breakdownLines } from './lib/table.ts';
import { MiB, f2 } from './lib/units.ts';

const [mode, dir] = process.argv.slice(2);
if (!dir || !['prepare', 'backup', 'restore'].includes(mode ?? '')) {
  console.error('usage: node bench/restore.ts prepare|backup|restore <dir>');
  process.exit(2);
}
const PROJECT = 'bench';
const paths = {
  source: join(dir, 'source.img'),
  sourceSha: join(dir, 'source.sha256'),
  home: join(dir, 'home'),
  backupId: join(dir, 'backup-id'),
  restored: join(dir, 'restored.img'),
};

if (mode === 'prepare') {
  const size = Math.round(Number(process.env.BENCH_SIZE_MIB ?? 2048) * MiB);
  await writeDiskImage(paths.source, size, Number(process.env.BENCH_SEED ?? 2026));
  await writeFile(paths.sourceSha, await sha256File(paths.source));
  console.log(`prepared ${paths.source}: ${size / MiB} MiB`);
  process.exit(0);
}

if (mode === 'restore') await rm(paths.restored, { force: true });
if (process.env.BENCH_DROP_CACHES === '1') {
  execFileSync('sync');
  await writeFile('/proc/sys/vm/drop_caches', '3');
}

const files = new Map([['src', paths.source], ['dst', paths.restored]]);
const runtime = await openRuntime(
  { backend: 'embedded', home: paths.home },
  { volumes: new FileVolumeProvider(async (_project, id) => (files.has(id) ? { path: files.get(id)! } : undefined)) },
);
const instruments = process.env.BENCH_METERS === '1' ? new Instruments(availableParallelism()) : undefined;

/** The runtime's own engine, or one whose every port call is timed. */
function engineDeps(): EngineDeps {
  if (!instruments) return runtime.taskDeps().engine;
  const deps = createEngineDeps({
    backend: runtime.backend,
    backups: runtime.stores.backups,
    volumes: timedVolumes(files, instruments),
    pool: new TimedPool(instruments),
    wrapStore: (s) => timedStore(s, instruments),
  });
  return { ...deps, index: timedIndex(deps.index, instruments) };
}

let timedDeps: EngineDeps | undefined;
try {
  const deps = trackPoolThreads(engineDeps);
  if (instruments) timedDeps = deps;
  const threads0 = threadTicks();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  const run = async () => {
    if (mode === 'backup') {
      const backup = await runBackup(deps, { projectId: PROJECT, volumeId: 'src', name: 'bench' });
      await writeFile(paths.backupId, backup.backupId);
      bytes = backup.stats!.storedBytes;
    } else {
      const backupId = (await readFile(paths.backupId, 'utf8')).trim();
      bytes = (await restoreBackup(deps, { projectId: PROJECT, backupId, targetVolumeId: 'dst' })).bytesWritten;
    }
  };
  const phase = instruments ? await instruments.phase(deps.pool.size, run) : (await run(), undefined);
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const threads = threadCpuDelta(threads0, threadTicks());
  const maxRssMB = (process.resourceUsage().maxRSS * 1024) / 1e6;
  const result = { mode, wallS, cpuS: (cpu.user + cpu.system) / 1e6, threads, maxRssMB, bytes };
  console.log(
    `${mode}: ${f2(wallS)} s wall, ${f2(result.cpuS)} CPU s (main ${f2(threads.main)}, workers ${f2(threads.workers)}, ` +
      `libuv ${f2(threads.libuv)}, other ${f2(threads.other)}), peak RSS ${maxRssMB.toFixed(0)} MB, ${(bytes / 1e6).toFixed(0)} MB ${mode === 'backup' ? 'stored' : 'written'}`,
  );
  if (phase) for (const line of breakdownLines(mode!, phase, mode === 'backup' ? BACKUP_STAGES : RESTORE_STAGES, availableParallelism())) console.log(line);
  console.log(JSON.stringify(result));
} finally {
  await timedDeps?.pool.close();
  await runtime.close();
}

if (mode === 'restore' && process.env.BENCH_CHECK === '1') {
  const ok = (await sha256File(paths.restored)) === (await readFile(paths.sourceSha, 'utf8')).trim();
  console.log(`restored image ${ok ? 'matches' : 'DIFFERS FROM'} the source`);
  if (!ok) process.exitCode = 1;
}

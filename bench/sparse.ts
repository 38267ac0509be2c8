// node bench/sparse.ts — the sparse case: a 16 TiB image holding 1 GB of scattered data, backed up and
// restored by the engine on the embedded backend. Holes are never read, so both should take time in
// proportion to the data, not to the 16 TiB.
//
// The image, the embedded home and the restored images live in a fresh folder under /dev/shm (tmpfs takes
// files of 16 TiB and has SEEK_DATA; ext4 refuses them), removed at the end. Each operation runs in its own
// process (this script again, with a mode), so each peak RSS is that operation's alone:
//   backup            a full backup of the image, four segments at once (as the workflow's Map runs them)
//   restore           to a new image (the provider creates it sparse)
//   restore-existing  to an existing all-hole image of the same size (as a volume created through the API):
//                     the engine asks the target where it holds data, per segment
// Then both restored images are checked: the data bit-exact (SHA-256 over the source's data ranges), and
// still sparse (allocated bytes against the source's).
//
// Env: BENCH_SPARSE_TIB (default 16), BENCH_SPARSE_MB (data, default 1024), BENCH_PIECE_KIB (size of each
// scattered piece, default 1024), BENCH_SEED (default 2026). MB = 10^6 bytes.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runBackup } from '../lib/engine/backup.ts';
import { restoreBackup } from '../lib/engine/restore.ts';
import { FileVolumeProvider } from '../lib/volumes/file-provider.ts';
import { openRuntime } from '../lib/wiring/runtime.ts';
import { TiB, allocatedBytes, dataRangesOf, hashRanges, requireSeekmap, sparseRoot, writeScattered } from '../test/support/sparse-image.ts';
import { threadCpuDelta, threadTicks, trackPoolThreads } from './lib/cpu-accounting.ts';
import { f1, f2 } from './lib/units.ts';

const PROJECT = 'bench';
/** Segments backed up at once: the workflows' Map MaxConcurrency (infra/constructs/workflows.ts). */
const SEGMENT_CONCURRENCY = 4;
const MODES = ['backup', 'restore', 'restore-existing'] as const;
type Mode = (typeof MODES)[number];

interface OpResult {
  mode: Mode;
  wallS: number;
  cpuS: number;
  maxRssMB: number;
  /** Stored (backup) or written (restore) bytes. */
  bytes: number;
  stats?: Record<string, number>;
}

const paths = (dir: string) => ({
  source: join(dir, 'source.img'),
  home: join(dir, 'home'),
  backupId: join(dir, 'backup-id'),
  restored: join(dir, 'restored.img'),
  existing: join(dir, 'existing.img'),
});

/** One operation in this process; prints its result as a JSON line. */
async function operation(mode: Mode, dir: string): Promise<void> {
  const p = paths(dir);
  const files = new Map([['src', p.source], ['dst', p.restored], ['existing', p.existing]]);
  const runtime = await openRuntime(
    { backend: 'embedded', home: p.home },
    { volumes: new FileVolumeProvider(async (_project, id) => (files.has(id) ? { path: files.get(id)! } : undefined)) },
  );
  try {
    const deps = trackPoolThreads(() => runtime.taskDeps().engine);
    const threads0 = threadTicks();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let bytes: number;
    let stats: Record<string, number> | undefined;
    if (mode === 'backup') {
      // Four segments at once, as the backup workflow's Map runs them.
      const backup = await runBackup(deps, { projectId: PROJECT, volumeId: 'src', name: 'sparse' }, { segmentConcurrency: SEGMENT_CONCURRENCY });
      await writeFile(p.backupId, backup.backupId);
      bytes = backup.stats!.storedBytes;
      stats = { ...backup.stats! };
    } else {
      const backupId = (await readFile(p.backupId, 'utf8')).trim();
      bytes = (await restoreBackup(deps, { projectId: PROJECT, backupId, targetVolumeId: mode === 'restore' ? 'dst' : 'existing' })).bytesWritten;
    }
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    threadCpuDelta(threads0, threadTicks());
    const result: OpResult = { mode, wallS, cpuS: (cpu.user + cpu.system) / 1e6, maxRssMB: (process.resourceUsage().maxRSS * 1024) / 1e6, bytes, ...(stats ? { stats } : {}) };
    console.log(JSON.stringify(result));
  } finally {
    await runtime.close();
  }
}

/** Runs one operation in a child process and returns what it printed last. */
function child(mode: Mode, dir: string): Promise<OpResult> {
  return new Promise((ok, fail) => {
    const c = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', import.meta.filename, mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('error', fail);
    c.once('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) fail(new Error(`${mode} exited with ${code}: ${out}`));
      else ok(JSON.parse(last) as OpResult);
    });
  });
}

async function main(): Promise<void> {
  const sizeBytes = Math.round(Number(process.env.BENCH_SPARSE_TIB ?? 16) * TiB);
  const dataMB = Number(process.env.BENCH_SPARSE_MB ?? 1024);
  const pieceBytes = Number(process.env.BENCH_PIECE_KIB ?? 1024) * 1024;
  const pieces = Math.max(1, Math.round((dataMB * 1e6) / pieceBytes));
  requireSeekmap();
  const dir = await mkdtemp(join(await sparseRoot(sizeBytes), 'openvbs-bench-sparse-'));
  const p = paths(dir);
  try {
    const ranges = await writeScattered(p.source, sizeBytes, pieces, pieceBytes, Number(process.env.BENCH_SEED ?? 2026));
    const dataBytes = ranges.reduce((n, r) => n + r.length, 0);
    await writeFile(p.existing, '');
    await truncate(p.existing, sizeBytes);
    console.log(`sparse image: ${sizeBytes / TiB} TiB, ${pieces} pieces of ${pieceBytes / 1024} KiB scattered (${f1(dataBytes / 1e6)} MB of data) in ${dir}`);

    const results: OpResult[] = [];
    for (const mode of MODES) results.push(await child(mode, dir));
    console.log('');
    console.log('| operation | seconds | MB/s of data | CPU s | peak RSS MB | bytes |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of results) {
      const what = r.mode === 'backup' ? 'stored' : 'written';
      console.log(`| ${r.mode} | ${f2(r.wallS)} | ${f1(dataBytes / 1e6 / r.wallS)} | ${f2(r.cpuS)} | ${r.maxRssMB.toFixed(0)} | ${f1(r.bytes / 1e6)} MB ${what} |`);
    }
    const stats = results[0]!.stats!;
    console.log(`backup: ${stats.blocks} blocks, ${stats.zeroBlocks} zero, ${stats.chunkCount} with data`);

    const sourceHash = await hashRanges(p.source, ranges);
    const sourceAllocated = await allocatedBytes(p.source);
    let ok = true;
    for (const [name, path] of [['restore', p.restored], ['restore-existing', p.existing]] as const) {
      const same = (await hashRanges(path, ranges)) === sourceHash;
      const dataInRestored = (await dataRangesOf(path)).reduce((n, r) => n + r.length, 0);
      const allocated = await allocatedBytes(path);
      ok &&= same && dataInRestored <= sourceAllocated * 1.5;
      console.log(
        `${name}: data ${same ? 'matches' : 'DIFFERS FROM'} the source; ${f1(allocated / 1e6)} MB allocated ` +
          `(source ${f1(sourceAllocated / 1e6)} MB), ${f1(dataInRestored / 1e6)} MB in data ranges`,
      );
    }
    console.log(JSON.stringify({ sizeBytes, dataBytes, pieces, pieceBytes, results }));
    if (!ok) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const [mode, dir] = process.argv.slice(2);
if (mode === undefined) await main();
else if (MODES.includes(mode as Mode) && dir) await operation(mode as Mode, dir);
else {
  console.error('usage: node bench/sparse.ts   (the modes backup|restore|restore-existing <dir> are its own child processes)');
  process.exit(2);
}

// npm run bench:engine — the backup engine alone, on each backend.
//
// 1. A disk-like image (2 GiB by default) is written to a temporary folder (test/support/disk-image.ts).
// 2. CPU only, before the backends (and the AWS SDK) are loaded: the chunk pipeline and its steps on
//    in-memory blocks of that image (lib/cpu-bench.ts).
// 3. A full backup with the object store and chunk index in memory: the engine without storage costs.
// 4. On each backend — embedded (SQLite, files, key files in a fresh home) and AWS (S3, DynamoDB and KMS
//    on a moto emulator this process starts): a full backup, an incremental after in-place writes to 1%
//    of the blocks, and a restore of the incremental checked bit-exact by SHA-256, each on a freshly
//    written image. Every port call is timed (lib/meters.ts); each backend gets the same table: MB/s,
//    object PUTs, peak RSS, the stage that limited each phase, and the bytes stored.
// MB = 10^6 bytes. A JSON line with everything ends the output. The emulator and the temporary folder are
// removed on any exit.
//
// Env: BENCH_SIZE_MIB (image size, default 2048), BENCH_CPU_MIB (CPU-only corpus, default 256; 0 skips the
//      CPU-only part), BENCH_SEED (image seed, default 2026), BENCH_MEMORY=0 skips the in-memory run,
//      BENCH_BACKENDS (default "embedded,aws").
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENGINE_CONFIG } from '../lib/engine/engine.ts';
import { DISK_LIKE_MIX } from '../test/support/disk-image.ts';
import { openBenchBackend, parseBackendKinds } from './lib/backends.ts';
import { cpuBench, pipelineAgain } from './lib/cpu-bench.ts';
import type { CpuResults } from './lib/cpu-bench.ts';
import { trackPoolThreads } from './lib/cpu-accounting.ts';
import { Instruments, TimedPool } from './lib/meters.ts';
import { runInMemoryFull, runScenarios, writeImage } from './lib/scenarios.ts';
import type { ImageSpec, ScenarioContext, ScenarioResult } from './lib/scenarios.ts';
import { backendTable, cpuJson, cpuLines, inMemoryLines, phaseJson, scenarioJson, timeLines } from './lib/table.ts';
import { MiB, f0, f1, mb, rate } from './lib/units.ts';

const SIZE = Math.round(Number(process.env.BENCH_SIZE_MIB ?? 2048) * MiB);
const CPU_BYTES = Math.round(Number(process.env.BENCH_CPU_MIB ?? 256) * MiB);
const SEED = Number(process.env.BENCH_SEED ?? 2026);
const RUN_MEMORY = process.env.BENCH_MEMORY !== '0';
const BACKENDS = parseBackendKinds(process.env.BENCH_BACKENDS ?? 'embedded,aws');
const CORES = availableParallelism();
const CHANGE_FRACTION = 0.01;

const log = (line = '') => console.log(line);

const cleanups: Array<() => Promise<unknown>> = [];
let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of cleanups.reverse()) await c().catch((err) => console.error(`cleanup: ${(err as Error).message}`));
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}
// Whatever goes wrong, stop the emulator and remove the temporary folder before exiting.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err) => {
    console.error(`${event}:`, err);
    void cleanup().finally(() => process.exit(1));
  });
}

/** `close` runs once, whether called in turn or by the cleanup on exit. */
function closeOnce(close: () => Promise<unknown>): () => Promise<unknown> {
  let closing: Promise<unknown> | undefined;
  return () => (closing ??= close());
}

async function main() {
  log(
    `OpenVBS engine bench — node ${process.version}, ${CORES} cores (${cpus()[0]?.model ?? 'unknown'}), block ${DEFAULT_ENGINE_CONFIG.blockSize / 1024} KiB, ` +
      `MB = 10^6 B; backends ${BACKENDS.join(', ')}; load average at start ${loadavg().map(f1).join(' ')}`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-bench-engine-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  const image: ImageSpec = { path: join(dir, 'source.img'), sizeBytes: SIZE, seed: SEED };
  const genMs = await writeImage(image);
  log(`image: ${f0(SIZE / MiB)} MiB (${f0(mb(SIZE))} MB) disk-like, per 1 MiB region ${JSON.stringify(DISK_LIKE_MIX)}, seed ${SEED}; written at ${f0(rate(SIZE, genMs))} MB/s`);

  let cpu: CpuResults | undefined;
  if (CPU_BYTES > 0) {
    log('running: CPU-only measurements...');
    cpu = await cpuBench(image.path, SIZE, CPU_BYTES);
  }

  const instruments = new Instruments(CORES);
  const pool = trackPoolThreads(() => new TimedPool(instruments));
  const closePool = closeOnce(() => pool.close());
  cleanups.push(closePool);
  const ctx: ScenarioContext = { instruments, pool, dir, image, changeFraction: CHANGE_FRACTION };

  const results: Array<{ kind: string; label: string; scenario: ScenarioResult }> = [];
  let memory: Awaited<ReturnType<typeof runInMemoryFull>> | undefined;
  for (const [i, kind] of BACKENDS.entries()) {
    if (i > 0) await writeImage(image); // the previous backend's incremental changed it
    log(`running: ${kind} backend...`);
    const target = await openBenchBackend(kind, dir);
    const closeTarget = closeOnce(() => target.close());
    cleanups.push(closeTarget);
    if (i === 0 && RUN_MEMORY) memory = await runInMemoryFull(target, ctx);
    results.push({ kind, label: target.label, scenario: await runScenarios(target, ctx) });
    await closeTarget();
  }
  await closePool();

  let pipelineAfter: Awaited<ReturnType<typeof pipelineAgain>> | undefined;
  if (cpu) {
    log('running: pool pipeline again, after the backends ran...');
    pipelineAfter = await pipelineAgain(image.path, CPU_BYTES);
  }

  log();
  for (const r of results) {
    for (const line of backendTable(r.label, r.scenario, SIZE, CHANGE_FRACTION, CORES)) log(line);
    log();
  }
  if (memory) {
    for (const line of inMemoryLines(memory, SIZE, CORES)) log(line);
    log();
  }
  log('Where the time goes');
  for (const r of results) for (const line of timeLines(r.label, r.scenario, CORES)) log(line);
  log();
  if (cpu && pipelineAfter) {
    for (const line of cpuLines(cpu, pipelineAfter, SIZE, CORES)) log(line);
    log();
  }

  log(
    JSON.stringify({
      bench: 'engine',
      node: process.version,
      cores: CORES,
      sizeBytes: SIZE,
      blockSize: DEFAULT_ENGINE_CONFIG.blockSize,
      mix: DISK_LIKE_MIX,
      backends: Object.fromEntries(results.map((r) => [r.kind, scenarioJson(r.scenario, SIZE, CORES)])),
      inMemory: memory ? { ...phaseJson(memory.phase, SIZE), stats: memory.stats } : null,
      cpu: cpu && pipelineAfter ? cpuJson(cpu, pipelineAfter, CORES) : null,
    }),
  );
  const failed = results.filter((r) => !r.scenario.restoreOk).map((r) => r.kind);
  if (failed.length) throw new Error(`restored image differs from the source on ${failed.join(', ')}`);
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup();
}

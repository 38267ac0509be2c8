// What the engine benchmark prints: one table per backend (the same columns for each), where the time of
// each phase goes, the CPU-only measurements, and the JSON line that carries all of it.
import type { BackupStats } from '../../lib/engine/ports.ts';
import type { CpuResults, pipelineAgain } from './cpu-bench.ts';
import type { ThreadCpu } from './cpu-accounting.ts';
import { BACKUP_STAGES, RESTORE_STAGES, STAGE_LABELS, limitingStage, putTotal } from './meters.ts';
import type { PhaseResult, StageName } from './meters.ts';
import type { ScenarioResult } from './scenarios.ts';
import { MiB, f0, f1, f2, mb, rate } from './units.ts';

type PipelineResult = Awaited<ReturnType<typeof pipelineAgain>>;

const HEADER = `  ${'phase'.padEnd(26)}${'time s'.padStart(8)}${'vol MB/s'.padStart(10)}${'data MB/s'.padStart(11)}${'PUTs'.padStart(6)}${'peak RSS MiB (rise)'.padStart(21)}  limited by`;

function phaseRow(name: string, r: PhaseResult, volumeBytes: number, dataBytes: number, stages: StageName[], cores: number): string {
  const rise = r.peakRssSincePhase ? ` (+${f0(Math.max(0, r.peakRssBytes - r.rssStartBytes) / MiB)})` : ' (since start)';
  const rss = `${f0(r.peakRssBytes / MiB)}${rise}`;
  return (
    `  ${name.padEnd(26)}${f2(r.ms / 1000).padStart(8)}${f0(rate(volumeBytes, r.ms)).padStart(10)}${f0(rate(dataBytes, r.ms)).padStart(11)}` +
    `${String(putTotal(r.puts)).padStart(6)}${rss.padStart(21)}  ${limitingStage(r, stages, cores)}`
  );
}

/** The table every backend gets: full, incremental and restore, stored bytes, PUTs, peak RSS, the limiting stage. */
export function backendTable(label: string, s: ScenarioResult, volumeBytes: number, changeFraction: number, cores: number): string[] {
  const fs = s.fullStats;
  const is = s.incrementalStats;
  const storedBytes = s.stored.packs.bytes + s.stored.manifests.bytes;
  return [
    `${label} — MB/s over the volume (zeros included) | over its non-zero data; peak RSS of this process`,
    HEADER,
    phaseRow('full backup', s.full, volumeBytes, fs.logicalBytes, BACKUP_STAGES, cores),
    phaseRow(`incremental (${100 * changeFraction}% changed)`, s.incremental, volumeBytes, is.logicalBytes, BACKUP_STAGES, cores),
    phaseRow('restore (incremental)', s.restore, volumeBytes, is.logicalBytes, RESTORE_STAGES, cores),
    `  full: ${fs.blocks} blocks, ${fs.zeroBlocks} zero, ${fs.newChunks} new, ${fs.dedupHits} dedup; ${s.full.puts.packs} pack + ${s.full.puts.manifests} manifest PUTs`,
    `  incremental: ${s.changedBlocks} blocks changed by 4 KiB writes; ${is.reusedFromParent} blocks reused from the parent, ${is.newChunks} new chunks, ${f1(mb(is.storedBytes))} MB stored`,
    `  restore: ${f0(mb(s.restoredBytes))} MB written and flushed; SHA-256 ${s.restoreOk ? 'equal' : 'DIFFERENT'}`,
    `  stored after both backups: ${f0(mb(storedBytes))} MB = ${s.stored.packs.count} packs ${f0(mb(s.stored.packs.bytes))} MB + ${s.stored.manifests.count} manifests ${f1(mb(s.stored.manifests.bytes) * 1000)} kB; ` +
      `full backup sealed ${f0(mb(fs.storedBytes))} MB for ${f0(mb(fs.logicalBytes))} MB non-zero (${f2(fs.storedBytes / fs.logicalBytes)}; ${f2(fs.storedBytes / volumeBytes)} of the volume)`,
  ];
}

export function inMemoryLines(r: { phase: PhaseResult; stats: BackupStats }, volumeBytes: number, cores: number): string[] {
  return [
    'engine without storage — full backup with object store and chunk index in memory (same pool; catalog and keys of the first backend)',
    HEADER,
    phaseRow('full backup, in memory', r.phase, volumeBytes, r.stats.logicalBytes, BACKUP_STAGES, cores),
  ];
}

/** Per stage of one phase: calls, busy time, summed latency, bytes; then CPU per thread and pool slots. */
export function breakdownLines(title: string, r: PhaseResult, stages: StageName[], cores: number): string[] {
  const out = [`  ${title}: wall ${f2(r.ms / 1000)} s; busy = time with >=1 call in flight (stages overlap)`];
  out.push(`    ${'stage'.padEnd(14)}${'calls'.padStart(7)}${'busy s'.padStart(9)}${'busy%'.padStart(7)}${'sum s'.padStart(9)}${'avg ms'.padStart(9)}${'MB'.padStart(9)}`);
  for (const n of stages) {
    const m = r.meters[n];
    if (m.calls === 0) continue;
    out.push(
      `    ${STAGE_LABELS[n].padEnd(14)}${String(m.calls).padStart(7)}${f2(m.busyMs / 1000).padStart(9)}${f0((100 * m.busyMs) / r.ms).padStart(7)}` +
        `${f2(m.sumMs / 1000).padStart(9)}${f1(m.sumMs / m.calls).padStart(9)}${(m.bytes ? f0(mb(m.bytes)) : '').padStart(9)}`,
    );
  }
  const pool = r.meters.pool;
  if (pool.calls > 0) {
    out.push(
      `    pool: >=1 task in flight ${f0((100 * pool.busyMs) / r.ms)}% of wall; all ${r.workers} workers given work ${f0((100 * pool.cappedMs) / (r.workers * r.ms))}% (upper bound on worker utilisation)`,
    );
  }
  const wallCpu = (cores * r.ms) / 1000;
  const th = r.threads;
  out.push(
    `    CPU s: main thread ${f2(th.main)} (${f0((100 * th.main * 1000) / r.ms)}% of wall; event loop busy ${f0(100 * r.mainThreadElu)}%), ` +
      `chunk workers ${f2(th.workers)} (${f0((100 * th.workers * 1000) / (r.workers * r.ms))}% of ${r.workers}x wall), libuv (file I/O) ${f2(th.libuv)}, V8/other threads ${f2(th.other)}`,
  );
  out.push(
    `    machine ${f1(r.machineCpuS)} of ${f1(wallCpu)} CPU s (${f0((100 * r.machineCpuS) / wallCpu)}% busy); outside this process (emulator, other load) ${f1(Math.max(0, r.machineCpuS - r.processCpuS))} s`,
  );
  const sl = r.slots;
  out.push(`    pool slots: ${sl.acquires} acquired, ${sl.created} new SharedArrayBuffers (${f0(sl.createdBytes / MiB)} MiB) this phase; peak held ${sl.peakHeld} slots, ${f0(sl.peakHeldBytes / MiB)} MiB`);
  return out;
}

export function timeLines(label: string, s: ScenarioResult, cores: number): string[] {
  return [
    `${label}:`,
    ...breakdownLines('full backup', s.full, BACKUP_STAGES, cores),
    ...breakdownLines('incremental', s.incremental, BACKUP_STAGES, cores),
    ...breakdownLines('restore', s.restore, RESTORE_STAGES, cores),
  ];
}

/** The CPU-only measurements beside the reference ceilings measured on a 2-core machine of this kind. */
export function cpuLines(cpu: CpuResults, pipelineAfter: PipelineResult, imageBytes: number, cores: number): string[] {
  const out = [
    `CPU only, in memory: ${cpu.corpusBlocks} non-zero 512 KiB blocks (${f0(mb(cpu.corpusBytes))} MB) from the image: ${cpu.textBlocks} text-like, ${cpu.randomBlocks} random; ` +
      `zstd-1 stored ratio ${f2(cpu.storedRatio)} (text-like ${f2(cpu.textRatio)}). No I/O; zero blocks excluded, so every block is hashed, compressed and encrypted. Median of 3.`,
    `  ${'work'.padEnd(58)}${'measured'.padStart(12)}   reference ceiling (2 cores)`,
  ];
  const row = (name: string, v: number, reference = '-') => out.push(`  ${name.padEnd(58)}${f0(v).padStart(7)} MB/s   ${reference}`);
  row('pipeline HMAC+zstd1+AES-GCM, ChunkPool workers: 1', cpu.pipeline.workers1.mbps, '~800 (native zstd)');
  row(`pipeline HMAC+zstd1+AES-GCM, ChunkPool workers: ${cores}`, cpu.pipeline.workersAll.mbps, '~1,550 (native zstd)');
  row('  engine pool again, after the backends ran', pipelineAfter.mbps);
  row('pipeline on the main thread (digestBlocks+sealBlocks)', cpu.pipeline.oneThread);
  row('  predicted one thread = 1/(1/hmac + 1/zstd + 1/aes)', cpu.predictedSingleThread);
  row('HMAC-SHA256 (chunkId)', cpu.single.hmacSha256, '~1,750');
  row('zstd level 1 compress, as sealChunk calls it', cpu.single.zstd1, '~650-900 built-in; ~2,000 native');
  row('  text-like blocks only', cpu.single.zstd1Text);
  row('  random blocks only', cpu.single.zstd1Random);
  row('AES-256-GCM encrypt, as sealInto (update copied out)', cpu.single.aesGcmSealInto, '2,500-3,000');
  row('AES-256-GCM encrypt, output not copied', cpu.single.aesGcmNoCopy, '2,500-3,000');
  row('sealChunk (zstd + AES-GCM + copies)', cpu.single.sealChunk);
  row('all-zero check 512 KiB (isAllZero, memcmp zero page)', cpu.single.allZeroCheck, '~16,000');
  row('PackWriter: copy into ~16 MiB pack bodies + finishPack', cpu.single.packWriter);
  row(`restore: copy range into slot + ChunkPool.open, workers: ${cores}`, cpu.openPipeline.mbps);
  row('zstd decompress (text-like), as openChunk calls it', cpu.single.zstdDecompress);
  row('AES-256-GCM decrypt (MB/s of ciphertext)', cpu.single.aesGcmDecrypt);
  row('openChunk (decrypt + decompress + HMAC verify)', cpu.single.openChunk);
  const split = (t: ThreadCpu) => [t.main, t.workers, t.other].map(f2).join(' / ');
  out.push(
    `  pool CPU s per pass, main / workers / V8+other threads: seal pipeline workers 1: ${split(cpu.pipeline.workers1.threads)}; workers ${cores}: ${split(cpu.pipeline.workersAll.threads)}; ` +
      `workers ${cores} after the backends ran: ${split(pipelineAfter.threads)}; restore open, workers ${cores}: ${split(cpu.openPipeline.threads)}`,
  );
  out.push('');
  out.push(`Incremental hot loop alone (read 8 MiB batches of the ${f0(imageBytes / MiB)} MiB image + pool.digest on ${cores} workers, page cache hot; MB/s over the volume; median of 3)`);
  row('read into recycled pool slots + pool.digest (as backup.ts)', cpu.readDigest.mbps);
  out.push(
    `  runs (MB/s): read+digest [${cpu.readDigest.runs.map(f0).join(', ')}]; pipeline workers 1 [${cpu.pipeline.workers1.runs.map(f0).join(', ')}], ` +
      `workers ${cores} [${cpu.pipeline.workersAll.runs.map(f0).join(', ')}], after the backends ran [${pipelineAfter.runs.map(f0).join(', ')}]`,
  );
  out.push(`  contention: while the CPU-only numbers ran, processes outside this one used ${f0(100 * cpu.othersShare)}% of the machine`);
  return out;
}

export function phaseJson(r: PhaseResult, volumeBytes: number) {
  const stages: Record<string, { calls: number; busyS: number; sumS: number; mb: number }> = {};
  for (const [name, m] of Object.entries(r.meters)) {
    if (m.calls) stages[name] = { calls: m.calls, busyS: +(m.busyMs / 1000).toFixed(3), sumS: +(m.sumMs / 1000).toFixed(3), mb: +mb(m.bytes).toFixed(1) };
  }
  const sl = r.slots;
  return {
    seconds: +(r.ms / 1000).toFixed(2),
    volumeMBps: Math.round(rate(volumeBytes, r.ms)),
    puts: r.puts,
    rssStartMiB: Math.round(r.rssStartBytes / MiB),
    peakRssMiB: Math.round(r.peakRssBytes / MiB),
    stages,
    slots: { acquired: sl.acquires, created: sl.created, createdMiB: Math.round(sl.createdBytes / MiB), peakHeld: sl.peakHeld, peakHeldMiB: Math.round(sl.peakHeldBytes / MiB) },
    processCpuS: +r.processCpuS.toFixed(2),
    machineCpuS: +r.machineCpuS.toFixed(2),
    mainThreadElu: +r.mainThreadElu.toFixed(3),
    threadCpuS: Object.fromEntries(Object.entries(r.threads).map(([k, v]) => [k, +v.toFixed(2)])),
  };
}

export function scenarioJson(s: ScenarioResult, volumeBytes: number, cores: number) {
  return {
    full: { ...phaseJson(s.full, volumeBytes), limitedBy: limitingStage(s.full, BACKUP_STAGES, cores), stats: s.fullStats },
    incremental: { ...phaseJson(s.incremental, volumeBytes), limitedBy: limitingStage(s.incremental, BACKUP_STAGES, cores), changedBlocks: s.changedBlocks, stats: s.incrementalStats },
    restore: { ...phaseJson(s.restore, volumeBytes), limitedBy: limitingStage(s.restore, RESTORE_STAGES, cores), bytesWritten: s.restoredBytes, sha256Equal: s.restoreOk },
    storage: {
      logicalBytes: s.fullStats.logicalBytes,
      storedBytes: s.fullStats.storedBytes,
      ratio: +(s.fullStats.storedBytes / s.fullStats.logicalBytes).toFixed(3),
      packs: s.stored.packs.count,
      packBytes: s.stored.packs.bytes,
      manifests: s.stored.manifests.count,
      manifestBytes: s.stored.manifests.bytes,
    },
  };
}

export function cpuJson(cpu: CpuResults, pipelineAfter: PipelineResult, cores: number) {
  const round = Math.round;
  return {
    corpusBytes: cpu.corpusBytes,
    textBlocks: cpu.textBlocks,
    randomBlocks: cpu.randomBlocks,
    storedRatio: +cpu.storedRatio.toFixed(3),
    pipelineAfterBackendsMBps: round(pipelineAfter.mbps),
    pipelineMBps: { oneThread: round(cpu.pipeline.oneThread), workers1: round(cpu.pipeline.workers1.mbps), [`workers${cores}`]: round(cpu.pipeline.workersAll.mbps) },
    openPipelineMBps: round(cpu.openPipeline.mbps),
    othersShare: +cpu.othersShare.toFixed(3),
    readDigestMBps: round(cpu.readDigest.mbps),
    singleMBps: Object.fromEntries(Object.entries(cpu.single).map(([k, v]) => [k, round(v)])),
  };
}

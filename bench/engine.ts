// npm run bench:engine — the backup engine alone, against its own local moto emulator.
//
// 1. A disk-like image (2 GiB by default) is written to a temp dir (test/support/disk-image.ts).
// 2. CPU only, before the AWS SDK is loaded: the chunk pipeline (HMAC-SHA256 id + zstd-1 + AES-256-GCM,
//    i.e. digestBlocks + sealBlocks semantics) on in-memory 512 KiB non-zero blocks of that image, held in
//    the pool's shared slots, through ChunkPool with 1 worker and with all cores, on the main thread, and
//    each step alone on one thread, for a line-by-line comparison with
//    /work/shared/reference/engine-anchors.md (medians of 3); the restore direction (ChunkPool.open) too,
//    and the incremental hot loop (read into recycled slots + digest).
// 3. End to end: a full backup with in-memory object store and chunk index (the engine without the
//    emulator), then against moto: full backup, incremental after 1% scattered in-place writes, and a
//    restore of the incremental to a new file checked bit-exact by SHA-256. Every port (volume reads and
//    writes, chunk pool, chunk index, object store) is wrapped and timed, S3 PUTs are counted, and CPU
//    time is sampled per thread of this process and for the whole machine (the rest is moto, mostly).
//    Pool slots (SharedArrayBuffers) created and the peak held are counted per phase.
// MB = 10^6 bytes; end-to-end MB/s are over the volume size (zero blocks included) and over the non-zero
// data. A compact table, then one JSON line at the end. Moto and the temp dir are removed on any exit.
//
// Env: BENCH_SIZE_MIB (image size, default 2048), BENCH_CPU_MIB (CPU-only corpus, default 256),
//      BENCH_SEED (image seed, default 2026), BENCH_MEMORY=0 skips the in-memory engine run.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate } from 'node:timers';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { runBackup } from '../lib/engine/backup.ts';
import type { DomainKeys } from '../lib/engine/chunk-codec.ts';
import { SEAL_OVERHEAD, chunkId, deriveDomainKeys, isAllZero, openChunk, sealChunk } from '../lib/engine/chunk-codec.ts';
import { digestBlocks, sealBlocks, sealCapacity } from '../lib/engine/chunk-ops.ts';
import { ChunkPool } from '../lib/engine/chunk-pool.ts';
import type { Slot } from '../lib/engine/chunk-pool.ts';
import { DEFAULT_ENGINE_CONFIG } from '../lib/engine/engine.ts';
import type { EngineDeps } from '../lib/engine/engine.ts';
import { PackWriter } from '../lib/engine/pack-writer.ts';
import { ObjectNotFoundError } from '../lib/engine/ports.ts';
import type { BackupStats, BlockReader, BlockWriter, ChunkIndex, ChunkLocation, ObjectStore, VolumeProvider } from '../lib/engine/ports.ts';
import { restoreBackup } from '../lib/engine/restore.ts';
import { FileVolumeProvider } from '../lib/volumes/file-provider.ts';
import { startMoto } from '../scripts/moto.mjs';
import { DISK_LIKE_MIX, scatterWrites, sha256File, writeDiskImage } from '../test/support/disk-image.ts';

const MiB = 1024 * 1024;
const SIZE = Math.round(Number(process.env.BENCH_SIZE_MIB ?? 2048) * MiB);
const CPU_BYTES = Math.round(Number(process.env.BENCH_CPU_MIB ?? 256) * MiB);
const SEED = Number(process.env.BENCH_SEED ?? 2026);
const RUN_MEMORY = process.env.BENCH_MEMORY !== '0';
const BLOCK = DEFAULT_ENGINE_CONFIG.blockSize;
const CORES = availableParallelism();
const CHANGE_FRACTION = 0.01;

const mb = (bytes: number) => bytes / 1e6;
const rate = (bytes: number, ms: number) => (ms > 0 ? bytes / 1e6 / (ms / 1000) : 0);
const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (line = '') => console.log(line);

// ---------------------------------------------------------------------------------------------------
// Timing instrumentation: every port call is timed; overlapping calls are merged into "busy" time.

/** Calls, summed latency, and time with at least one call in flight (busy) for one kind of port call. */
class Meter {
  calls = 0;
  bytes = 0;
  sumMs = 0;
  busyMs = 0;
  /** Integral of min(in-flight, cap) over time: with cap = workers, worker-busy time. */
  cappedMs = 0;
  private active = 0;
  private last = 0;
  private readonly cap: number;

  constructor(cap = 1) {
    this.cap = cap;
  }

  private advance(now: number) {
    if (this.active > 0) {
      const dt = now - this.last;
      this.busyMs += dt;
      this.cappedMs += Math.min(this.active, this.cap) * dt;
    }
    this.last = now;
  }

  async time<T>(fn: () => Promise<T>, bytes = 0): Promise<T> {
    const t0 = performance.now();
    this.advance(t0);
    this.active++;
    this.calls++;
    this.bytes += bytes;
    try {
      return await fn();
    } finally {
      const t1 = performance.now();
      this.advance(t1);
      this.active--;
      this.sumMs += t1 - t0;
    }
  }
}

function newMeters(workers: number) {
  return {
    read: new Meter(),
    digest: new Meter(),
    lookup: new Meter(),
    seal: new Meter(),
    putPack: new Meter(),
    record: new Meter(),
    putManifest: new Meter(),
    get: new Meter(),
    exists: new Meter(),
    getRange: new Meter(),
    open: new Meter(),
    write: new Meter(),
    flush: new Meter(),
    deleteObjects: new Meter(),
    pool: new Meter(Math.max(1, workers)),
  };
}
type Meters = ReturnType<typeof newMeters>;
let meters: Meters = newMeters(CORES);

/** Slots the timed pool created, and the bytes held at once (per phase: reset by `phase`). */
const slotStats = { created: 0, createdBytes: 0, held: 0, heldBytes: 0, peakHeld: 0, peakHeldBytes: 0, acquires: 0 };

/** The chunk pool with each call timed and its slots counted (the work itself is the engine's own). */
class TimedPool extends ChunkPool {
  private maxSlotId = 0;

  override acquire(bytes: number): Slot {
    const slot = super.acquire(bytes);
    slotStats.acquires++;
    if (slot.id > this.maxSlotId) {
      this.maxSlotId = slot.id; // ids only grow: a new SharedArrayBuffer
      slotStats.created++;
      slotStats.createdBytes += slot.buf.length;
    }
    slotStats.held++;
    slotStats.heldBytes += slot.buf.length;
    slotStats.peakHeld = Math.max(slotStats.peakHeld, slotStats.held);
    slotStats.peakHeldBytes = Math.max(slotStats.peakHeldBytes, slotStats.heldBytes);
    return slot;
  }

  override release(slot: Slot): void {
    slotStats.held--;
    slotStats.heldBytes -= slot.buf.length;
    super.release(slot);
  }

  override digest(...args: Parameters<ChunkPool['digest']>) {
    return meters.pool.time(() => meters.digest.time(() => super.digest(...args), args[2]));
  }

  override seal(...args: Parameters<ChunkPool['seal']>) {
    return meters.pool.time(() => meters.seal.time(() => super.seal(...args), args[4].length * BLOCK));
  }

  override open(...args: Parameters<ChunkPool['open']>) {
    return meters.pool.time(() => meters.open.time(() => super.open(...args), args[2]));
  }
}

function timedStore(s: ObjectStore): ObjectStore {
  return {
    put: (key, body) => (key.startsWith('packs/') ? meters.putPack : meters.putManifest).time(() => s.put(key, body), body.byteLength),
    get: (key) => meters.get.time(() => s.get(key)),
    getRange: (key, start, length) => meters.getRange.time(() => s.getRange(key, start, length), length),
    exists: (key) => meters.exists.time(() => s.exists(key)),
    list: (prefix) => s.list(prefix),
    delete: (keys) => meters.deleteObjects.time(() => s.delete(keys)),
  };
}

function timedIndex(index: ChunkIndex): ChunkIndex {
  return {
    lookup: (domainId, ids) => meters.lookup.time(() => index.lookup(domainId, ids), ids.length),
    record: (domainId, entries) => meters.record.time(() => index.record(domainId, entries), entries.length),
  };
}

function timedVolumes(files: Map<string, string>): VolumeProvider {
  const inner = new FileVolumeProvider(async (_project, id) => (files.has(id) ? { path: files.get(id)! } : undefined));
  return {
    describe: (p, v) => inner.describe(p, v),
    async openReader(p, v): Promise<BlockReader> {
      const r = await inner.openReader(p, v);
      return { sizeBytes: r.sizeBytes, read: (into, offset) => meters.read.time(() => r.read(into, offset), into.length), close: () => r.close() };
    },
    async openWriter(p, v, min): Promise<BlockWriter> {
      const w = await inner.openWriter(p, v, min);
      return {
        sizeBytes: w.sizeBytes,
        zeroed: w.zeroed,
        write: (data, offset) => meters.write.time(() => w.write(data, offset), data.length),
        read: (into, offset) => w.read(into, offset),
        flush: () => meters.flush.time(() => w.flush()),
        close: () => w.close(),
      };
    },
  };
}

/** In-memory ports, to run the engine without the emulator. */
class MemoryStore implements ObjectStore {
  private readonly objects = new Map<string, Buffer>();

  async put(key: string, body: Uint8Array) {
    this.objects.set(key, Buffer.from(body)); // a copy: PackWriter reuses a pack body once its put is done
  }

  async get(key: string) {
    const o = this.objects.get(key);
    if (!o) throw new ObjectNotFoundError(key);
    return o;
  }

  async getRange(key: string, start: number, length: number) {
    return (await this.get(key)).subarray(start, start + length);
  }

  async exists(key: string) {
    return this.objects.has(key);
  }

  async *list(prefix: string) {
    for (const [key, o] of this.objects) if (key.startsWith(prefix)) yield { key, size: o.length };
  }

  async delete(keys: string[]) {
    for (const k of keys) this.objects.delete(k);
  }
}

class MemoryIndex implements ChunkIndex {
  private readonly map = new Map<string, ChunkLocation>();

  async lookup(domainId: string, ids: string[]) {
    const out = new Map<string, ChunkLocation>();
    for (const id of ids) {
      const loc = this.map.get(`${domainId}#${id}`);
      if (loc) out.set(id, loc);
    }
    return out;
  }

  async record(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>) {
    for (const e of entries) this.map.set(`${domainId}#${e.id}`, e.location);
  }
}

// CPU accounting: this process (all threads) and the whole machine (the rest is moto, mostly).
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - v[3]! - v[4]!, total };
}

/** CPU ticks (1/100 s) per thread of this process, from /proc/self/task. */
function threadTicks(): Map<string, { comm: string; ticks: number }> {
  const out = new Map<string, { comm: string; ticks: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' '); // fields from #3 (state) on
      out.set(tid, { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(') ')), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** Thread ids of chunk-pool workers: threads that appear while a pool is constructed. */
const poolThreads = new Set<string>();
function trackPoolThreads<T>(make: () => T): T {
  const before = new Set(readdirSync('/proc/self/task'));
  const pool = make();
  for (const tid of readdirSync('/proc/self/task')) if (!before.has(tid)) poolThreads.add(tid);
  return pool;
}

interface ThreadCpu {
  main: number;
  workers: number;
  libuv: number;
  other: number;
}

function threadCpuDelta(a: Map<string, { comm: string; ticks: number }>, b: Map<string, { comm: string; ticks: number }>): ThreadCpu {
  const r: ThreadCpu = { main: 0, workers: 0, libuv: 0, other: 0 };
  for (const [tid, t] of b) {
    const s = (t.ticks - (a.get(tid)?.ticks ?? 0)) / 100;
    if (tid === String(process.pid)) r.main += s;
    else if (poolThreads.has(tid)) r.workers += s;
    else if (t.comm.startsWith('libuv')) r.libuv += s;
    else r.other += s;
  }
  return r;
}

interface SlotUse {
  created: number;
  createdBytes: number;
  peakHeld: number;
  peakHeldBytes: number;
  acquires: number;
}

interface PhaseResult {
  ms: number;
  slots: SlotUse;
  meters: Meters;
  processCpuS: number;
  machineCpuS: number;
  mainThreadElu: number;
  threads: ThreadCpu;
}

async function phase(workers: number, fn: () => Promise<void>): Promise<PhaseResult> {
  meters = newMeters(workers);
  const slots0 = { ...slotStats };
  slotStats.peakHeld = slotStats.held;
  slotStats.peakHeldBytes = slotStats.heldBytes;
  const cpu0 = process.cpuUsage();
  const m0 = machineTicks();
  const th0 = threadTicks();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  const th1 = threadTicks();
  const m1 = machineTicks();
  return {
    ms,
    slots: {
      created: slotStats.created - slots0.created,
      createdBytes: slotStats.createdBytes - slots0.createdBytes,
      peakHeld: slotStats.peakHeld,
      peakHeldBytes: slotStats.peakHeldBytes,
      acquires: slotStats.acquires - slots0.acquires,
    },
    meters,
    processCpuS: (cpu.user + cpu.system) / 1e6,
    machineCpuS: (m1.busy - m0.busy) / 100,
    mainThreadElu: elu.utilization,
    threads: threadCpuDelta(th0, th1),
  };
}

function breakdownLines(title: string, r: PhaseResult, workers: number, names: Array<keyof Meters>): string[] {
  const out = [`  ${title}: wall ${f2(r.ms / 1000)} s; busy = time with >=1 call in flight (stages overlap)`];
  out.push(`    ${'stage'.padEnd(13)}${'calls'.padStart(7)}${'busy s'.padStart(9)}${'busy%'.padStart(7)}${'sum s'.padStart(9)}${'avg ms'.padStart(9)}${'MB'.padStart(9)}`);
  for (const n of names) {
    const m = r.meters[n];
    if (m.calls === 0) continue;
    out.push(
      `    ${n.padEnd(13)}${String(m.calls).padStart(7)}${f2(m.busyMs / 1000).padStart(9)}${f0((100 * m.busyMs) / r.ms).padStart(7)}` +
        `${f2(m.sumMs / 1000).padStart(9)}${f1(m.sumMs / m.calls).padStart(9)}${(m.bytes ? f0(mb(m.bytes)) : '').padStart(9)}`,
    );
  }
  const pool = r.meters.pool;
  if (pool.calls > 0) {
    out.push(`    pool: >=1 task in flight ${f0((100 * pool.busyMs) / r.ms)}% of wall; all ${workers} workers given work ${f0((100 * pool.cappedMs) / (workers * r.ms))}% (upper bound on worker utilisation)`);
  }
  const wallCpu = (CORES * r.ms) / 1000;
  const th = r.threads;
  out.push(
    `    CPU s: main thread ${f2(th.main)} (${f0((100 * th.main * 1000) / r.ms)}% of wall; event loop busy ${f0(100 * r.mainThreadElu)}%), ` +
      `chunk workers ${f2(th.workers)} (${f0((100 * th.workers * 1000) / (workers * r.ms))}% of ${workers}x wall), libuv (file I/O) ${f2(th.libuv)}, V8/other threads ${f2(th.other)}`,
  );
  out.push(
    `    machine ${f1(r.machineCpuS)} of ${f1(wallCpu)} CPU s (${f0((100 * r.machineCpuS) / wallCpu)}% busy); outside this process (moto + anything else running) ${f1(Math.max(0, r.machineCpuS - r.processCpuS))} s`,
  );
  const sl = r.slots;
  out.push(
    `    pool slots: ${sl.acquires} acquired, ${sl.created} new SharedArrayBuffers (${f0(sl.createdBytes / MiB)} MiB) this phase; peak held ${sl.peakHeld} slots, ${f0(sl.peakHeldBytes / MiB)} MiB`,
  );
  return out;
}

function meterJson(r: PhaseResult) {
  const stages: Record<string, { calls: number; busyS: number; sumS: number; mb: number }> = {};
  for (const [name, m] of Object.entries(r.meters)) {
    if (m.calls) stages[name] = { calls: m.calls, busyS: +(m.busyMs / 1000).toFixed(3), sumS: +(m.sumMs / 1000).toFixed(3), mb: +mb(m.bytes).toFixed(1) };
  }
  const threadCpuS = Object.fromEntries(Object.entries(r.threads).map(([k, v]) => [k, +v.toFixed(2)]));
  const sl = r.slots;
  const slots = { acquired: sl.acquires, created: sl.created, createdMiB: Math.round(sl.createdBytes / MiB), peakHeld: sl.peakHeld, peakHeldMiB: Math.round(sl.peakHeldBytes / MiB) };
  return { stages, slots, processCpuS: +r.processCpuS.toFixed(2), machineCpuS: +r.machineCpuS.toFixed(2), mainThreadElu: +r.mainThreadElu.toFixed(3), threadCpuS };
}

// ---------------------------------------------------------------------------------------------------
// CPU-only measurements on in-memory blocks.

/** Lets signal handlers and timers run between synchronous measurements (Ctrl-C stays responsive). */
const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Median MB/s of 3 timed passes over `blocks` (after one untimed warm-up pass over a few blocks). */
async function timeBlocks(blocks: Buffer[], fn: (b: Buffer, i: number) => void): Promise<number> {
  for (let i = 0; i < Math.min(16, blocks.length); i++) fn(blocks[i]!, i);
  const bytes = blocks.reduce((a, b) => a + b.length, 0);
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    await yieldNow();
    const t0 = performance.now();
    for (let i = 0; i < blocks.length; i++) fn(blocks[i]!, i);
    runs.push(rate(bytes, performance.now() - t0));
  }
  return median(runs);
}

/** One batch of blocks held in a pool slot, as backup.ts holds what it read. */
interface Batch {
  slot: Slot;
  length: number;
}

/** Runs `task(i)` for every i below `count`, at most `maxInflight` at once (the engine's pattern); returns ms. */
async function bounded(count: number, maxInflight: number, task: (i: number) => Promise<void>): Promise<number> {
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const t0 = performance.now();
  for (let i = 0; i < count && failure === undefined; i++) {
    while (inflight.size >= maxInflight) await Promise.race(inflight);
    const p: Promise<void> = task(i)
      .catch((err) => {
        failure ??= err;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw failure;
  return performance.now() - t0;
}

/** digestBlocks + sealBlocks through the pool on batches already in its slots, backup.ts's concurrency. */
async function pipelinePass(pool: ChunkPool, domainId: string, batches: Batch[]): Promise<{ ms: number; sealedBytes: number }> {
  let sealedBytes = 0;
  const ms = await bounded(batches.length, Math.max(2, pool.size * 2), async (i) => {
    const { slot, length } = batches[i]!;
    const d = await pool.digest(domainId, slot, length, BLOCK);
    const blocks = Array.from({ length: d.zero.length }, (_, j) => j); // the corpus has no zero blocks
    const s = await pool.seal(domainId, slot, length, BLOCK, blocks, d.ids);
    sealedBytes += s.lengths.reduce((a, b) => a + b, 0);
    pool.release(s.out); // in the engine: once the chunks are copied into their pack
  });
  return { ms, sealedBytes };
}

/** Copies blocks into batch buffers of `batchBlocks` blocks, as the engine reads them. */
function toBatches(blocks: Buffer[]): Buffer[] {
  const batchBlocks = DEFAULT_ENGINE_CONFIG.batchBlocks;
  const batches: Buffer[] = [];
  for (let i = 0; i < blocks.length; i += batchBlocks) {
    const part = blocks.slice(i, i + batchBlocks);
    const b = Buffer.alloc(part.length * BLOCK);
    part.forEach((blk, j) => blk.copy(b, j * BLOCK));
    batches.push(b);
  }
  return batches;
}

/** Each batch copied into a slot of the pool (held for the whole measurement). */
function loadBatches(pool: ChunkPool, batches: Buffer[]): Batch[] {
  return batches.map((b) => {
    const slot = pool.acquire(b.length);
    b.copy(slot.buf);
    return { slot, length: b.length };
  });
}

const perPass = (th: ThreadCpu, passes: number): ThreadCpu => ({ main: th.main / passes, workers: th.workers / passes, libuv: th.libuv / passes, other: th.other / passes });

async function pipelineRate(workers: number, keys: DomainKeys, corpus: Buffer[]): Promise<{ mbps: number; runs: number[]; ratio: number; threads: ThreadCpu }> {
  const pool = trackPoolThreads(() => new ChunkPool({ workers }));
  try {
    pool.registerDomain('d-bench', keys);
    const batches = loadBatches(pool, toBatches(corpus));
    const bytes = corpus.length * BLOCK;
    await pipelinePass(pool, 'd-bench', batches); // warm-up: starts the workers and their JIT, creates the output slots
    const runs: number[] = [];
    let sealed = 0;
    const th0 = threadTicks();
    for (let r = 0; r < 3; r++) {
      const p = await pipelinePass(pool, 'd-bench', batches);
      runs.push(rate(bytes, p.ms));
      sealed = p.sealedBytes;
    }
    const th = threadCpuDelta(th0, threadTicks());
    return { mbps: median(runs), runs, ratio: sealed / bytes, threads: perPass(th, 3) };
  } finally {
    await pool.close();
  }
}

/** Sealed chunks laid out back to back in ranges of at most 16 MiB, as restore's ranged GETs return them. */
interface SealedRange {
  data: Buffer;
  chunks: Array<{ offset: number; length: number }>;
  ids: Buffer;
  plainBytes: number;
}

function toRanges(sealed: Buffer[], ids: Buffer[], plainLengths: number[]): SealedRange[] {
  const ranges: SealedRange[] = [];
  for (let i = 0; i < sealed.length; ) {
    const parts: number[] = [];
    let size = 0;
    while (i < sealed.length && (parts.length === 0 || size + sealed[i]!.length <= 16 * MiB)) {
      parts.push(i);
      size += sealed[i]!.length;
      i++;
    }
    let at = 0;
    ranges.push({
      data: Buffer.concat(parts.map((k) => sealed[k]!)),
      chunks: parts.map((k) => {
        const c = { offset: at, length: sealed[k]!.length };
        at += c.length;
        return c;
      }),
      ids: Buffer.concat(parts.map((k) => ids[k]!)),
      plainBytes: parts.reduce((a, k) => a + plainLengths[k]!, 0),
    });
  }
  return ranges;
}

/** The restore direction as restore.ts runs it: each ranged GET copied into a slot, opened in the pool. */
async function openPass(pool: ChunkPool, domainId: string, ranges: SealedRange[]): Promise<number> {
  return bounded(ranges.length, DEFAULT_ENGINE_CONFIG.restoreConcurrency, async (i) => {
    const r = ranges[i]!;
    const slot = pool.acquire(r.data.length);
    r.data.copy(slot.buf);
    let opened;
    try {
      opened = await pool.open(domainId, slot, r.data.length, r.chunks, r.ids, BLOCK);
    } finally {
      pool.release(slot);
    }
    if (!opened.ok) throw new Error(`chunk ${opened.index} did not open: ${opened.reason}`);
    pool.release(opened.out); // in the engine: once the blocks are written
  });
}

async function openRate(workers: number, keys: DomainKeys, ranges: SealedRange[]): Promise<{ mbps: number; threads: ThreadCpu }> {
  const pool = trackPoolThreads(() => new ChunkPool({ workers }));
  try {
    pool.registerDomain('d-bench', keys);
    const plain = ranges.reduce((a, r) => a + r.plainBytes, 0);
    await openPass(pool, 'd-bench', ranges); // warm-up
    const runs: number[] = [];
    const th0 = threadTicks();
    for (let r = 0; r < 3; r++) runs.push(rate(plain, await openPass(pool, 'd-bench', ranges)));
    return { mbps: median(runs), threads: perPass(threadCpuDelta(th0, threadTicks()), 3) };
  } finally {
    await pool.close();
  }
}

/** digestBlocks + sealBlocks on one thread over 8 MiB batches, sealing into one reused output buffer. */
async function singleThreadPipeline(keys: DomainKeys, corpus: Buffer[]): Promise<number> {
  const batches = toBatches(corpus);
  const out = Buffer.allocUnsafeSlow(sealCapacity(DEFAULT_ENGINE_CONFIG.batchBlocks * BLOCK, BLOCK, Array.from({ length: DEFAULT_ENGINE_CONFIG.batchBlocks }, (_, j) => j)));
  const pass = () => {
    for (const batch of batches) {
      const d = digestBlocks(keys, batch, BLOCK);
      sealBlocks(keys, batch, BLOCK, Array.from({ length: d.zero.length }, (_, j) => j), d.ids, out);
    }
  };
  pass(); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    await yieldNow();
    const t0 = performance.now();
    pass();
    runs.push(rate(corpus.length * BLOCK, performance.now() - t0));
  }
  return median(runs);
}

/**
 * The hot loop of an incremental backup (read 8 MiB batches, digest them in the pool; nearly every block
 * then matches the parent), as backup.ts runs it: each batch read into a recycled pool slot.
 */
async function readDigestLoop(pool: ChunkPool, domainId: string, path: string, size: number): Promise<number> {
  const batchBytes = DEFAULT_ENGINE_CONFIG.batchBlocks * BLOCK;
  const fh = await open(path, 'r');
  try {
    const ms = await bounded(Math.ceil(size / batchBytes), Math.max(2, pool.size * 2), async (i) => {
      const offset = i * batchBytes;
      const length = Math.min(batchBytes, size - offset);
      const slot = pool.acquire(length);
      try {
        const { bytesRead } = await fh.read(slot.buf, 0, length, offset);
        if (bytesRead !== length) throw new Error('short read');
        await pool.digest(domainId, slot, length, BLOCK);
      } finally {
        pool.release(slot);
      }
    });
    return rate(size, ms);
  } finally {
    await fh.close();
  }
}

async function readDigestRate(keys: DomainKeys, path: string, size: number): Promise<{ mbps: number; runs: number[] }> {
  const pool = trackPoolThreads(() => new ChunkPool());
  try {
    pool.registerDomain('d-bench', keys);
    await readDigestLoop(pool, 'd-bench', path, Math.min(size, 256 * MiB)); // warm-up
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) runs.push(await readDigestLoop(pool, 'd-bench', path, size));
    return { mbps: median(runs), runs };
  } finally {
    await pool.close();
  }
}

/** An object store that drops what it is given (PackWriter measured without I/O). */
class NullStore extends MemoryStore {
  override async put() {}
}

/** PackWriter as backup.ts drives it: sealed chunks copied into ~16 MiB pack bodies, finishPack, (no) upload. */
async function packWriterRate(keys: DomainKeys, ids: Buffer[], sealed: Buffer[]): Promise<number> {
  const domain = { projectId: 'bench', domainId: 'd-bench', kmsKeyId: 'bench', keys };
  const index: ChunkIndex = { lookup: async () => new Map(), record: async () => {} };
  const bytes = sealed.reduce((a, b) => a + b.length, 0);
  const pass = async () => {
    const w = new PackWriter(new NullStore(), index, domain, DEFAULT_ENGINE_CONFIG.packTargetBytes, BLOCK + SEAL_OVERHEAD, DEFAULT_ENGINE_CONFIG.uploadConcurrency);
    const t0 = performance.now();
    for (let i = 0; i < sealed.length; i++) {
      w.add(ids[i]!, sealed[i]!);
      if (i % DEFAULT_ENGINE_CONFIG.batchBlocks === DEFAULT_ENGINE_CONFIG.batchBlocks - 1) await w.backpressure(); // once per batch
    }
    await w.finish();
    return rate(bytes, performance.now() - t0);
  };
  await pass(); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) runs.push(await pass());
  return median(runs);
}

/** Up to `maxBytes` of the image's non-zero 512 KiB blocks, in image order. */
async function nonZeroBlocks(path: string, maxBytes: number): Promise<Buffer[]> {
  const fh = await open(path, 'r');
  const out: Buffer[] = [];
  try {
    for (let at = 0; out.length * BLOCK < maxBytes; at += BLOCK) {
      const b = Buffer.alloc(BLOCK);
      const { bytesRead } = await fh.read(b, 0, BLOCK, at);
      if (bytesRead < BLOCK) break;
      if (!isAllZero(b)) out.push(b);
    }
  } finally {
    await fh.close();
  }
  return out;
}

async function cpuBench(imagePath: string) {
  const corpus = await nonZeroBlocks(imagePath, CPU_BYTES);
  const m0 = machineTicks();
  const cpu0 = process.cpuUsage();
  const keys = deriveDomainKeys(randomBytes(32), 'd-bench');
  // zstd as sealChunk and openChunk call it (chunk-codec.ts)
  const zstd1 = { params: { [zc.ZSTD_c_compressionLevel]: 1 }, chunkSize: BLOCK + 64 * 1024 };
  const unzstd = { chunkSize: BLOCK, maxOutputLength: BLOCK };
  const bytes = corpus.length * BLOCK;

  // The pool pipelines first, while the heap is small (the single-step numbers below allocate a lot).
  const pipeline = {
    workers1: await pipelineRate(1, keys, corpus),
    workersAll: await pipelineRate(CORES, keys, corpus),
  };

  const out = Buffer.allocUnsafeSlow(BLOCK + SEAL_OVERHEAD);
  const ids = corpus.map((b) => chunkId(keys, b));
  const sealedChunks = corpus.map((b, i) => {
    const len = sealChunk(keys, ids[i]!, b, out, 0);
    return Buffer.from(out.subarray(0, len));
  });
  const ranges = toRanges(sealedChunks, ids, corpus.map((b) => b.length));
  const openPipeline = await openRate(CORES, keys, ranges);

  // Composition: blocks zstd shrinks (text-like) vs blocks stored raw (random).
  const compressed = corpus.map((b) => zstdCompressSync(b, zstd1));
  const textIdx = corpus.map((_, i) => i).filter((i) => compressed[i]!.length < BLOCK);
  const text = textIdx.map((i) => corpus[i]!);
  const random = corpus.filter((_, i) => compressed[i]!.length >= BLOCK);
  const storedRatio = corpus.reduce((a, b, i) => a + Math.min(compressed[i]!.length, b.length), 0) / bytes;
  const textRatio = textIdx.reduce((a, i) => a + compressed[i]!.length, 0) / Math.max(1, text.length * BLOCK);

  const textCompressed = textIdx.map((i) => compressed[i]!);
  const zero = Buffer.alloc(BLOCK);
  const nonce = randomBytes(12);

  const single = {
    hmacSha256: await timeBlocks(corpus, (b) => void createHmac('sha256', keys.idKey).update(b).digest()),
    zstd1: await timeBlocks(corpus, (b) => void zstdCompressSync(b, zstd1)),
    zstd1Text: await timeBlocks(text, (b) => void zstdCompressSync(b, zstd1)),
    zstd1Random: await timeBlocks(random, (b) => void zstdCompressSync(b, zstd1)),
    aesGcmSealInto: await timeBlocks(corpus, (b, i) => {
      // what sealInto does: update() output and tag copied into the output slot
      const c = createCipheriv('aes-256-gcm', keys.encKey, nonce);
      c.setAAD(ids[i]!);
      out.set(c.update(b), 13);
      c.final();
      out.set(c.getAuthTag(), 13 + b.length);
    }),
    aesGcmNoCopy: await timeBlocks(corpus, (b) => {
      const c = createCipheriv('aes-256-gcm', keys.encKey, nonce);
      c.update(b);
      c.final();
      c.getAuthTag();
    }),
    sealChunk: await timeBlocks(corpus, (b, i) => void sealChunk(keys, ids[i]!, b, out, 0)),
    allZeroCheck: await timeBlocks(Array.from({ length: 256 }, () => zero), (b) => void isAllZero(b)),
    packWriter: await packWriterRate(keys, ids, sealedChunks),
    // restore side (MB/s of plaintext)
    zstdDecompress: await timeBlocks(text, (_b, i) => void zstdDecompressSync(textCompressed[i]!, unzstd)),
    aesGcmDecrypt: await timeBlocks(sealedChunks, (s) => {
      // decryption alone (the tag check in final() is part of openChunk below)
      const d = createDecipheriv('aes-256-gcm', keys.encKey, s.subarray(1, 13));
      d.update(s.subarray(13, s.length - 16));
    }),
    openChunk: await timeBlocks(corpus, (_b, i) => void openChunk(keys, ids[i]!, sealedChunks[i]!, BLOCK)),
  };

  const oneThread = await singleThreadPipeline(keys, corpus);
  const readDigest = await readDigestRate(keys, imagePath, SIZE);
  const m1 = machineTicks();
  const cpu1 = process.cpuUsage(cpu0);
  const othersShare = Math.max(0, (m1.busy - m0.busy) / 100 - (cpu1.user + cpu1.system) / 1e6) / ((m1.total - m0.total) / 100);
  return {
    corpus,
    keys,
    readDigest,
    othersShare,
    corpusBlocks: corpus.length,
    corpusBytes: bytes,
    textBlocks: text.length,
    randomBlocks: random.length,
    storedRatio,
    textRatio,
    single,
    openPipeline,
    pipeline: { ...pipeline, oneThread },
    predictedSingleThread: 1 / (1 / single.hmacSha256 + 1 / single.zstd1 + 1 / single.aesGcmSealInto),
  };
}

// ---------------------------------------------------------------------------------------------------

async function bucketBytes(store: ObjectStore, prefix: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const o of store.list(prefix)) {
    count++;
    bytes += o.size;
  }
  return { count, bytes };
}

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
// Whatever goes wrong, stop moto and remove the image before exiting (moto would outlive us).
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err) => {
    console.error(`${event}:`, err);
    void cleanup().finally(() => process.exit(1));
  });
}

async function main() {
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  log(`OpenVBS engine bench — node ${process.version}, ${CORES} cores (${cpuModel}), block ${BLOCK / 1024} KiB, MB = 10^6 B; load average at start ${loadavg().map(f1).join(' ')}`);

  const moto = await startMoto({ quiet: true });
  cleanups.push(() => moto.stop());
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-bench-engine-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  process.env.AWS_ENDPOINT_URL = moto.endpoint;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'bench';
  process.env.AWS_SECRET_ACCESS_KEY = 'bench';
  delete process.env.AWS_PROFILE;

  const image = join(dir, 'source.img');
  let t = performance.now();
  await writeDiskImage(image, SIZE, SEED);
  const genMs = performance.now() - t;
  log(`image: ${f0(SIZE / MiB)} MiB (${f0(mb(SIZE))} MB) disk-like, per 1 MiB region ${JSON.stringify(DISK_LIKE_MIX)}, seed ${SEED}; written in ${f1(genMs / 1000)} s (page cache hot)`);

  // CPU only first, in a fresh process (no emulator traffic, small heap).
  log('running: CPU-only measurements...');
  const cpu = await cpuBench(image);

  // The AWS SDK is loaded only now, so the CPU-only numbers above come from a process without it
  // (a bigger heap makes every GC triggered by large-buffer churn cost more; measured again at the end).
  const { createClients } = await import('../lib/aws/clients.ts');
  const { S3ObjectStore } = await import('../lib/aws/s3-object-store.ts');
  const { createEngineDeps } = await import('../lib/engine/wiring.ts');
  const { provisionLocalResources } = await import('../lib/local/provision.ts');
  const clients = createClients();
  const config = await provisionLocalResources(clients, `bench-${randomBytes(4).toString('hex')}`);
  const pool = trackPoolThreads(() => new TimedPool());
  cleanups.push(() => pool.close());
  const files = new Map([
    ['src', image],
    ['dst', join(dir, 'restore.img')],
  ]);
  let putCount = 0;
  const putsByKind = { packs: 0, manifests: 0, other: 0 };
  const deps: EngineDeps = createEngineDeps({
    config,
    clients,
    pool,
    volumes: timedVolumes(files),
    wrapStore: (s) => {
      const timed = timedStore(s);
      return {
        ...timed,
        put: (key, body) => {
          putCount++;
          putsByKind[key.startsWith('packs/') ? 'packs' : key.startsWith('manifests/') ? 'manifests' : 'other']++;
          return timed.put(key, body);
        },
      };
    },
  });
  deps.index = timedIndex(deps.index);
  const rawStore = new S3ObjectStore(clients.s3, config.bucket); // uncounted, for listing

  // The full backup with in-memory object store and chunk index first: the engine without moto.
  log('running: full backup with in-memory ports, then full, incremental and restore against moto...');
  let memPhase: PhaseResult | undefined;
  let memStats: BackupStats | undefined;
  if (RUN_MEMORY) {
    const memDeps: EngineDeps = { ...deps, store: timedStore(new MemoryStore()), index: timedIndex(new MemoryIndex()) };
    memPhase = await phase(pool.size, async () => {
      memStats = (await runBackup(memDeps, { projectId: 'bench-mem', volumeId: 'src', name: 'full-in-memory' })).stats!;
    });
  }
  // Full backup.
  let puts0 = putCount;
  let full!: Awaited<ReturnType<typeof runBackup>>;
  const fullPhase = await phase(pool.size, async () => {
    full = await runBackup(deps, { projectId: 'bench', volumeId: 'src', name: 'full' });
  });
  const fullPuts = putCount - puts0;
  const fullPutKinds = { ...putsByKind };
  const fs = full.stats!; // full-backup stats

  // Incremental after 1% scattered 4 KiB writes.
  t = performance.now();
  const changed = await scatterWrites(image, SIZE, BLOCK, CHANGE_FRACTION, SEED + 1);
  const shaIncr = await sha256File(image);
  const scatterMs = performance.now() - t;
  puts0 = putCount;
  let incr!: Awaited<ReturnType<typeof runBackup>>;
  const incrPhase = await phase(pool.size, async () => {
    incr = await runBackup(deps, { projectId: 'bench', volumeId: 'src', name: 'incremental' });
  });
  const incrPuts = putCount - puts0;
  const is = incr.stats!;
  if (incr.parentId !== full.backupId) throw new Error('the second backup is not an incremental of the first');

  // Restore the incremental to a new (sparse) file and verify it.
  let restoredBytes = 0;
  const restorePhase = await phase(pool.size, async () => {
    const r = await restoreBackup(deps, { projectId: 'bench', backupId: incr.backupId, targetVolumeId: 'dst' });
    restoredBytes = r.bytesWritten;
  });
  const restoredSha = await sha256File(files.get('dst')!);
  const restoreOk = restoredSha === shaIncr;
  await rm(files.get('dst')!, { force: true });

  const packs = await bucketBytes(rawStore, 'packs/');
  const manifests = await bucketBytes(rawStore, 'manifests/');

  await pool.close();

  // The pool pipeline again, now that the SDK is loaded and the emulator phases have run.
  log('running: pool pipeline again with the AWS SDK loaded...');
  const pipelineAfter = await pipelineRate(CORES, cpu.keys, cpu.corpus);

  // ------------------------------------------------------------------------------------------------
  const volMBps = (r: PhaseResult) => rate(SIZE, r.ms);
  log();
  log('End to end (moto on loopback; MB/s over the volume size, zeros included | over non-zero data)');
  log(`  ${'phase'.padEnd(26)}${'time s'.padStart(8)}${'vol MB/s'.padStart(10)}${'data MB/s'.padStart(11)}${'PUTs'.padStart(6)}  notes`);
  log(
    `  ${'full backup'.padEnd(26)}${f2(fullPhase.ms / 1000).padStart(8)}${f0(volMBps(fullPhase)).padStart(10)}${f0(rate(fs.logicalBytes, fullPhase.ms)).padStart(11)}${String(fullPuts).padStart(6)}` +
      `  ${fs.blocks} blocks: ${fs.zeroBlocks} zero, ${fs.newChunks} new, ${fs.dedupHits} dedup; ${fullPutKinds.packs} packs + ${fullPutKinds.manifests} manifests`,
  );
  log(
    `  ${'incremental (1% changed)'.padEnd(26)}${f2(incrPhase.ms / 1000).padStart(8)}${f0(volMBps(incrPhase)).padStart(10)}${f0(rate(is.logicalBytes, incrPhase.ms)).padStart(11)}${String(incrPuts).padStart(6)}` +
      `  ${changed.length} blocks written; ${is.reusedFromParent} reused from parent, ${is.newChunks} new, ${f1(mb(is.storedBytes))} MB stored`,
  );
  log(
    `  ${'restore (incremental)'.padEnd(26)}${f2(restorePhase.ms / 1000).padStart(8)}${f0(volMBps(restorePhase)).padStart(10)}${f0(rate(is.logicalBytes, restorePhase.ms)).padStart(11)}${'0'.padStart(6)}` +
      `  ${f0(mb(restoredBytes))} MB written + fdatasync; SHA-256 ${restoreOk ? 'equal' : 'DIFFERENT'}`,
  );
  if (memPhase && memStats) {
    log(
      `  ${'full, in-memory S3+index'.padEnd(26)}${f2(memPhase.ms / 1000).padStart(8)}${f0(volMBps(memPhase)).padStart(10)}${f0(rate(memStats.logicalBytes, memPhase.ms)).padStart(11)}${'-'.padStart(6)}` +
        `  same engine and pool, no emulator (new project, so no dedup against the runs above)`,
    );
  }
  log(`  (image generation ${f0(rate(SIZE, genMs))} MB/s; scatter writes + SHA-256 ${f1(scatterMs / 1000)} s)`);
  log();
  log('Storage');
  log(`  volume ${f0(mb(SIZE))} MB; non-zero (logical) ${f0(mb(fs.logicalBytes))} MB; full backup stored ${f0(mb(fs.storedBytes))} MB sealed chunks`);
  log(
    `  ratio stored/logical ${f2(fs.storedBytes / fs.logicalBytes)}, stored/volume ${f2(fs.storedBytes / SIZE)}; ` +
      `after both backups S3 holds ${packs.count} packs ${f0(mb(packs.bytes))} MB + ${manifests.count} manifests ${f1(mb(manifests.bytes) * 1000)} kB`,
  );
  log(`  incremental stored ${f1(mb(is.storedBytes))} MB for ${changed.length} changed blocks (${f1(mb(changed.length * BLOCK))} MB of blocks touched)`);
  log();
  log('Where the time goes');
  const backupStages: Array<keyof Meters> = ['read', 'digest', 'lookup', 'seal', 'putPack', 'record', 'putManifest', 'get', 'exists'];
  for (const l of breakdownLines('full backup', fullPhase, pool.size, backupStages)) log(l);
  for (const l of breakdownLines('incremental', incrPhase, pool.size, backupStages)) log(l);
  for (const l of breakdownLines('restore', restorePhase, pool.size, ['get', 'lookup', 'getRange', 'open', 'write', 'flush'])) log(l);
  if (memPhase) for (const l of breakdownLines('full backup, in-memory ports', memPhase, pool.size, backupStages)) log(l);
  log();
  log(
    `CPU only, in-memory: ${cpu.corpusBlocks} non-zero 512 KiB blocks (${f0(mb(cpu.corpusBytes))} MB) from the image: ${cpu.textBlocks} text-like, ${cpu.randomBlocks} random; ` +
      `zstd-1 stored ratio ${f2(cpu.storedRatio)} (text-like ${f2(cpu.textRatio)}). No I/O; zero blocks excluded from the corpus, so every block is hashed, compressed and encrypted. Median of 3.`,
  );
  const row = (name: string, v: number, anchor: string) => log(`  ${name.padEnd(58)}${f0(v).padStart(7)} MB/s   ${anchor}`);
  log(`  ${'work'.padEnd(58)}${'measured'.padStart(12)}   anchor (engine-anchors.md, 2 cores)`);
  row(`pipeline HMAC+zstd1+AES-GCM, ChunkPool workers: 1`, cpu.pipeline.workers1.mbps, '~800 (native zstd)');
  row(`pipeline HMAC+zstd1+AES-GCM, ChunkPool workers: ${CORES}`, cpu.pipeline.workersAll.mbps, '~1,550 (native zstd)');
  row(`  engine pool again, after the AWS SDK was loaded`, pipelineAfter.mbps, '-');
  row('pipeline on the main thread (digestBlocks+sealBlocks)', cpu.pipeline.oneThread, '-');
  row('  predicted one thread = 1/(1/hmac + 1/zstd + 1/aes)', cpu.predictedSingleThread, '-');
  row('HMAC-SHA256 (chunkId)', cpu.single.hmacSha256, '~1,750');
  row('zstd level 1 compress, as sealChunk calls it', cpu.single.zstd1, '~650-900 built-in; ~2,000 native');
  row('  text-like blocks only', cpu.single.zstd1Text, '-');
  row('  random blocks only', cpu.single.zstd1Random, '-');
  row('AES-256-GCM encrypt, as sealInto (update copied out)', cpu.single.aesGcmSealInto, '2,500-3,000');
  row('AES-256-GCM encrypt, output not copied', cpu.single.aesGcmNoCopy, '2,500-3,000');
  row('sealChunk (zstd + AES-GCM + copies)', cpu.single.sealChunk, '-');
  row('all-zero check 512 KiB (isAllZero, memcmp zero page)', cpu.single.allZeroCheck, '~16,000');
  row('PackWriter: copy into ~16 MiB pack bodies + finishPack', cpu.single.packWriter, '-');
  row(`restore: copy range into slot + ChunkPool.open, workers: ${CORES}`, cpu.openPipeline.mbps, '-');
  row('zstd decompress (text-like), as openChunk calls it', cpu.single.zstdDecompress, '-');
  row('AES-256-GCM decrypt (MB/s of ciphertext)', cpu.single.aesGcmDecrypt, '-');
  row('openChunk (decrypt + decompress + HMAC verify)', cpu.single.openChunk, '-');
  const split = (t: ThreadCpu) => [t.main, t.workers, t.other].map(f2).join(' / ');
  log(
    `  pool CPU s per pass, main / workers / V8+other threads: seal pipeline workers 1: ${split(cpu.pipeline.workers1.threads)}; workers ${CORES}: ${split(cpu.pipeline.workersAll.threads)}; ` +
      `workers ${CORES} with SDK loaded: ${split(pipelineAfter.threads)}; restore open, workers ${CORES}: ${split(cpu.openPipeline.threads)}`,
  );
  log();
  log(`Incremental hot loop alone (read 8 MiB batches of the ${f0(SIZE / MiB)} MiB image + pool.digest on ${CORES} workers, page cache hot; MB/s over the volume; median of 3)`);
  row('read into recycled pool slots + pool.digest (as backup.ts)', cpu.readDigest.mbps, '-');
  log(`  runs (MB/s): read+digest [${cpu.readDigest.runs.map(f0).join(', ')}]; pipeline workers 1 [${cpu.pipeline.workers1.runs.map(f0).join(', ')}], workers ${CORES} [${cpu.pipeline.workersAll.runs.map(f0).join(', ')}], with SDK loaded [${pipelineAfter.runs.map(f0).join(', ')}]`);
  log(`  contention: while the CPU-only numbers ran, processes outside this one used ${f0(100 * cpu.othersShare)}% of the machine (load average ${loadavg().map(f1).join(' ')})`);
  log();

  const round = (n: number) => Math.round(n);
  const json = {
    bench: 'engine',
    node: process.version,
    cores: CORES,
    sizeBytes: SIZE,
    blockSize: BLOCK,
    mix: DISK_LIKE_MIX,
    full: { seconds: +(fullPhase.ms / 1000).toFixed(2), volumeMBps: round(volMBps(fullPhase)), dataMBps: round(rate(fs.logicalBytes, fullPhase.ms)), puts: fullPuts, stats: fs, ...meterJson(fullPhase) },
    incremental: { seconds: +(incrPhase.ms / 1000).toFixed(2), volumeMBps: round(volMBps(incrPhase)), puts: incrPuts, changedBlocks: changed.length, stats: is, ...meterJson(incrPhase) },
    restore: { seconds: +(restorePhase.ms / 1000).toFixed(2), volumeMBps: round(volMBps(restorePhase)), bytesWritten: restoredBytes, sha256Equal: restoreOk, ...meterJson(restorePhase) },
    inMemory: memPhase && memStats ? { seconds: +(memPhase.ms / 1000).toFixed(2), volumeMBps: round(volMBps(memPhase)), ...meterJson(memPhase) } : null,
    storage: { logicalBytes: fs.logicalBytes, storedBytes: fs.storedBytes, ratio: +(fs.storedBytes / fs.logicalBytes).toFixed(3), packs: packs.count, packBytes: packs.bytes, manifests: manifests.count, manifestBytes: manifests.bytes },
    cpu: {
      corpusBytes: cpu.corpusBytes,
      textBlocks: cpu.textBlocks,
      randomBlocks: cpu.randomBlocks,
      storedRatio: +cpu.storedRatio.toFixed(3),
      pipelineAfterSdkMBps: round(pipelineAfter.mbps),
      pipelineMBps: { oneThread: round(cpu.pipeline.oneThread), workers1: round(cpu.pipeline.workers1.mbps), [`workers${CORES}`]: round(cpu.pipeline.workersAll.mbps) },
      openPipelineMBps: round(cpu.openPipeline.mbps),
      othersShare: +cpu.othersShare.toFixed(3),
      readDigestMBps: round(cpu.readDigest.mbps),
      singleMBps: Object.fromEntries(Object.entries(cpu.single).map(([k, v]) => [k, round(v)])),
    },
  };
  log(JSON.stringify(json));
  if (!restoreOk) throw new Error('restored image differs from the source');
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup();
}

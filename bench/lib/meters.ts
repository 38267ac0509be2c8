// Timing instrumentation for engine runs: every port call (volume reads and writes, chunk pool, chunk index,
// object store) is timed; overlapping calls of one kind are merged into "busy" time. A phase measures wall
// time, CPU per thread and for the machine, the main thread's event-loop use, pool slots, object PUTs and
// peak RSS, and names the stage that limited it.
import { performance } from 'node:perf_hooks';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { ChunkPoolOptions, Slot } from '../../lib/engine/chunk-pool.ts';
import type { BlockReader, BlockWriter, ChunkIndex, ObjectStore, VolumeBlocks } from '../../lib/engine/ports.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import { PeakRss, machineTicks, threadCpuDelta, threadTicks } from './cpu-accounting.ts';
import type { ThreadCpu } from './cpu-accounting.ts';

/** Calls, summed latency, and time with at least one call in flight (busy) for one kind of port call. */
export class Meter {
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

/** What each stage is called in the tables. `pool` covers digest, seal and open together. */
export const STAGE_LABELS = {
  read: 'volume read',
  digest: 'digest',
  lookup: 'index lookup',
  seal: 'seal',
  putPack: 'pack PUT',
  record: 'index record',
  putManifest: 'manifest PUT',
  get: 'object GET',
  exists: 'object HEAD',
  getRange: 'ranged GET',
  open: 'open',
  write: 'volume write',
  flush: 'volume flush',
  deleteObjects: 'object delete',
  pool: 'chunk workers',
} as const;

export type StageName = keyof typeof STAGE_LABELS;
export type Meters = Record<StageName, Meter>;

function newMeters(workers: number): Meters {
  const meters = Object.fromEntries(Object.keys(STAGE_LABELS).map((name) => [name, new Meter()])) as Meters;
  meters.pool = new Meter(Math.max(1, workers));
  return meters;
}

export const BACKUP_STAGES: StageName[] = ['read', 'digest', 'lookup', 'seal', 'putPack', 'record', 'putManifest', 'get', 'exists'];
export const RESTORE_STAGES: StageName[] = ['get', 'lookup', 'getRange', 'open', 'write', 'flush'];

export interface PutCounts {
  packs: number;
  manifests: number;
  other: number;
}

export interface SlotUse {
  created: number;
  createdBytes: number;
  peakHeld: number;
  peakHeldBytes: number;
  acquires: number;
}

/** The meters the timed wrappers report to; each phase starts fresh ones. */
export class Instruments {
  meters: Meters;
  puts: PutCounts = { packs: 0, manifests: 0, other: 0 };
  /** Pool slots: created and acquired since start, held now, and the peak held in this phase. */
  readonly slots = { created: 0, createdBytes: 0, held: 0, heldBytes: 0, peakHeld: 0, peakHeldBytes: 0, acquires: 0 };
  private readonly rss = new PeakRss();

  constructor(workers: number) {
    this.meters = newMeters(workers);
  }

  /** Runs `fn` as one measured phase. */
  async phase(workers: number, fn: () => Promise<void>): Promise<PhaseResult> {
    this.meters = newMeters(workers);
    this.puts = { packs: 0, manifests: 0, other: 0 };
    const slots0 = { ...this.slots };
    this.slots.peakHeld = this.slots.held;
    this.slots.peakHeldBytes = this.slots.heldBytes;
    this.rss.reset();
    const rssStart = process.memoryUsage.rss();
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
      workers,
      slots: {
        created: this.slots.created - slots0.created,
        createdBytes: this.slots.createdBytes - slots0.createdBytes,
        peakHeld: this.slots.peakHeld,
        peakHeldBytes: this.slots.peakHeldBytes,
        acquires: this.slots.acquires - slots0.acquires,
      },
      meters: this.meters,
      puts: { ...this.puts },
      processCpuS: (cpu.user + cpu.system) / 1e6,
      machineCpuS: (m1.busy - m0.busy) / 100,
      mainThreadElu: elu.utilization,
      threads: threadCpuDelta(th0, th1),
      rssStartBytes: rssStart,
      peakRssBytes: this.rss.read(),
      peakRssSincePhase: this.rss.sincePhase,
    };
  }
}

export interface PhaseResult {
  ms: number;
  workers: number;
  slots: SlotUse;
  meters: Meters;
  puts: PutCounts;
  processCpuS: number;
  machineCpuS: number;
  mainThreadElu: number;
  threads: ThreadCpu;
  /** Resident set when the phase began, and its peak during the phase. */
  rssStartBytes: number;
  peakRssBytes: number;
  /** False when the peak could not be reset, so it covers the whole process so far. */
  peakRssSincePhase: boolean;
}

export const putTotal = (p: PutCounts) => p.packs + p.manifests + p.other;

/**
 * The stage that limited a phase: the one closest to fully busy. The chunk workers count as busy only
 * when every worker has a task; other stages when at least one call is in flight; the main thread by its
 * event-loop use. When the machine's CPUs were saturated mostly by other processes (the emulator), says so.
 */
export function limitingStage(r: PhaseResult, stages: StageName[], cores: number): string {
  const candidates: Array<{ label: string; share: number }> = [];
  if (r.meters.pool.calls > 0) candidates.push({ label: STAGE_LABELS.pool, share: r.meters.pool.cappedMs / (r.workers * r.ms) });
  candidates.push({ label: 'main thread', share: r.mainThreadElu });
  for (const name of stages) {
    if (name === 'digest' || name === 'seal' || name === 'open') continue; // the chunk workers' work, counted above
    const m = r.meters[name];
    if (m.calls > 0) candidates.push({ label: STAGE_LABELS[name], share: m.busyMs / r.ms });
  }
  candidates.sort((a, b) => b.share - a.share);
  const top = candidates[0]!;
  let out = `${top.label} ${Math.round(100 * top.share)}%`;
  const machineShare = r.machineCpuS / ((cores * r.ms) / 1000);
  const outside = Math.max(0, r.machineCpuS - r.processCpuS) / Math.max(r.machineCpuS, 1e-9);
  if (machineShare >= 0.9 && outside >= 0.25) out += `; CPUs ${Math.round(100 * machineShare)}% busy, ${Math.round(100 * outside)}% of it outside this process`;
  return out;
}

/** The chunk pool with each call timed and its slots counted (the work itself is the engine's own). */
export class TimedPool extends ChunkPool {
  private readonly instruments: Instruments;
  private maxSlotId = 0;

  constructor(instruments: Instruments, options?: ChunkPoolOptions) {
    super(options);
    this.instruments = instruments;
  }

  override acquire(bytes: number): Slot {
    const slot = super.acquire(bytes);
    const s = this.instruments.slots;
    s.acquires++;
    if (slot.id > this.maxSlotId) {
      this.maxSlotId = slot.id; // ids only grow: a new SharedArrayBuffer
      s.created++;
      s.createdBytes += slot.buf.length;
    }
    s.held++;
    s.heldBytes += slot.buf.length;
    s.peakHeld = Math.max(s.peakHeld, s.held);
    s.peakHeldBytes = Math.max(s.peakHeldBytes, s.heldBytes);
    return slot;
  }

  override release(slot: Slot): void {
    this.instruments.slots.held--;
    this.instruments.slots.heldBytes -= slot.buf.length;
    super.release(slot);
  }

  override digest(...args: Parameters<ChunkPool['digest']>) {
    const { meters } = this.instruments;
    return meters.pool.time(() => meters.digest.time(() => super.digest(...args), args[2]));
  }

  override seal(...args: Parameters<ChunkPool['seal']>) {
    const { meters } = this.instruments;
    return meters.pool.time(() => meters.seal.time(() => super.seal(...args), args[4].length * args[3]));
  }

  override open(...args: Parameters<ChunkPool['open']>) {
    const { meters } = this.instruments;
    return meters.pool.time(() => meters.open.time(() => super.open(...args), args[2]));
  }
}

function putKind(key: string): keyof PutCounts {
  return key.startsWith('packs/') ? 'packs' : key.startsWith('manifests/') ? 'manifests' : 'other';
}

/** The object store with each call timed and each PUT counted by kind. */
export function timedStore(s: ObjectStore, instruments: Instruments): ObjectStore {
  const putMeter = (key: string) => (key.startsWith('packs/') ? instruments.meters.putPack : instruments.meters.putManifest);
  return {
    put: (key, body) => {
      instruments.puts[putKind(key)]++;
      return putMeter(key).time(() => s.put(key, body), body.byteLength);
    },
    putIfAbsent: (key, body) => {
      instruments.puts[putKind(key)]++;
      return putMeter(key).time(() => s.putIfAbsent(key, body), body.byteLength);
    },
    get: (key) => instruments.meters.get.time(() => s.get(key)),
    getRange: (key, start, length, into) => instruments.meters.getRange.time(() => s.getRange(key, start, length, into), length),
    exists: (key) => instruments.meters.exists.time(() => s.exists(key)),
    list: (prefix) => s.list(prefix),
    delete: (keys) => instruments.meters.deleteObjects.time(() => s.delete(keys)),
  };
}

export function timedIndex(index: ChunkIndex, instruments: Instruments): ChunkIndex {
  return {
    lookup: (domainId, ids) => instruments.meters.lookup.time(() => index.lookup(domainId, ids), ids.length),
    record: (domainId, entries) => instruments.meters.record.time(() => index.record(domainId, entries), entries.length),
  };
}

/** File volumes by id (the map may change between phases), with reads, writes and flushes timed. */
export function timedVolumes(files: ReadonlyMap<string, string>, instruments: Instruments): VolumeBlocks {
  const inner = new FileVolumeProvider(async (_project, id) => (files.has(id) ? { path: files.get(id)! } : undefined));
  return {
    describe: (p, v) => inner.describe(p, v),
    async openReader(p, v): Promise<BlockReader> {
      const r = await inner.openReader(p, v);
      const holes = r.writtenRanges ? { writtenRanges: r.writtenRanges } : {}; // holes are not read, timed or not
      return { sizeBytes: r.sizeBytes, read: (into, offset) => instruments.meters.read.time(() => r.read(into, offset), into.length), ...holes, close: () => r.close() };
    },
    async openWriter(p, v, min): Promise<BlockWriter> {
      const w = await inner.openWriter(p, v, min);
      return {
        sizeBytes: w.sizeBytes,
        zeroed: w.zeroed,
        write: (data, offset) => instruments.meters.write.time(() => w.write(data, offset), data.length),
        read: (into, offset) => w.read(into, offset),
        ...(w.writtenRanges ? { writtenRanges: w.writtenRanges } : {}),
        ...(w.discard ? { discard: w.discard } : {}),
        flush: () => instruments.meters.flush.time(() => w.flush()),
        close: () => w.close(),
      };
    },
  };
}

// A pool of worker threads for the per-chunk CPU work (hash, compress, encrypt and the reverse).
//
// Data never moves between threads: batches and results live in slots, SharedArrayBuffers that every
// worker is given once, and messages carry slot numbers. Moving (transferring) an ArrayBuffer per batch
// instead counts as fresh external memory for V8 each time and drove garbage collection hard enough to
// cost ~40% of the pipeline once the AWS SDK was loaded (see bench/engine.ts). A request reuses the
// smallest free slot that fits without wasting more than the request itself; free slots beyond
// `maxFreeBytes` are dropped, so the pool holds about its callers' peak and no more.
// With size 0 the same operations run inline on the calling thread (a single-vCPU Lambda).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { allocatePageAlignedShared } from '../util/aligned-memory.ts';
import type { DomainKeys } from './chunk-codec.ts';
import { digestBlocks, openChunks, sealBlocks, sealCapacity } from './chunk-ops.ts';
import { leftGarbage, sealedChunkGarbage } from './chunk-garbage.ts';
import type { DigestResult, OpenRequestChunk } from './chunk-ops.ts';

export type WorkerRequest =
  | { op: 'keys'; domainId: string; idKey: Uint8Array; encKey: Uint8Array }
  | { op: 'slot'; slot: number; memory: SharedArrayBuffer }
  | { op: 'drop'; slot: number }
  | { op: 'digest'; taskId: number; domainId: string; slot: number; length: number; blockSize: number }
  | { op: 'seal'; taskId: number; domainId: string; slot: number; length: number; blockSize: number; blocks: number[]; ids: Uint8Array; out: number }
  | { op: 'open'; taskId: number; domainId: string; slot: number; length: number; chunks: OpenRequestChunk[]; ids: Uint8Array; maxPlainBytes: number; leafBytes: number; out: number };

export type WorkerResponse =
  | { taskId: number; op: 'digest'; ids: Uint8Array; zero: Uint8Array }
  | { taskId: number; op: 'seal'; lengths: number[] }
  | { taskId: number; op: 'open'; offsets: number[]; lengths: number[] }
  | { taskId: number; op: 'open'; failedIndex: number; reason: string }
  | { taskId: number; op: 'error'; message: string };

/** The worker's file in a Lambda bundle: bundled on its own beside the handler's index.mjs (infra/constructs/functions.ts). */
export const BUNDLED_WORKER_FILE = 'chunk-worker.mjs';
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './chunk-worker.ts' : `./${BUNDLED_WORKER_FILE}`, import.meta.url);
const SLOT_GRANULE = 1024 * 1024;
const DEFAULT_MAX_FREE_BYTES = 256 * 1024 * 1024;

/** A shared buffer owned by the pool; give it back with `release`. */
export interface Slot {
  readonly id: number;
  /** The whole slot; callers use the prefix they asked for. */
  readonly buf: Buffer;
}

export interface SealOutput {
  /** Holds the sealed chunks back to back; release it once they are copied out. */
  out: Slot;
  lengths: number[];
}

export type OpenOutput = { ok: true; out: Slot; offsets: number[]; lengths: number[] } | { ok: false; index: number; reason: string };

interface Pending {
  worker: WorkerSlot;
  resolve(r: WorkerResponse): void;
  reject(e: Error): void;
}

interface WorkerSlot {
  worker: Worker;
  inflight: number;
  /** Tasks sent to this worker and not answered yet. */
  tasks: Set<number>;
}

/** A chunk worker died (crashed, ran out of memory, was terminated) with this task in its hands. */
export class ChunkWorkerError extends Error {
  override name = 'ChunkWorkerError';
}

export interface ChunkPoolOptions {
  /** Worker threads; 0 runs everything inline on the calling thread. Default: all cores. */
  workers?: number;
  /** Free slot memory kept for reuse; more is given back. Default 256 MiB. */
  maxFreeBytes?: number;
}

/**
 * glibc's malloc hands freed memory back to the kernel once the free top of an arena passes a dynamic
 * threshold, which sits at about 1 MiB after the first 512 KiB buffer is freed. The chunk operations free a
 * block's worth of buffers per chunk (see chunk-garbage.ts), so that memory was faulted in again for the
 * next chunks: about 0.3 s of kernel time per GiB restored. Freeing one 16 MiB allocation moves the
 * thresholds for the whole process (16 MiB for mmap, 32 MiB for trimming), as MALLOC_MMAP_THRESHOLD_ and
 * MALLOC_TRIM_THRESHOLD_ would without an environment to set. Other allocators ignore it.
 */
let mallocTuned = false;
function raiseMallocThresholds(): void {
  if (mallocTuned) return;
  mallocTuned = true;
  new ArrayBuffer(16 * 1024 * 1024).transfer(0); // transfer(0) frees the 16 MiB at once
}

export class ChunkPool {
  readonly size: number;
  private readonly workers: WorkerSlot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly inlineKeys = new Map<string, DomainKeys>();
  /** Every slot the workers know (a replacement worker is told them all). */
  private readonly slotMemory = new Map<number, SharedArrayBuffer>();
  private readonly free: Slot[] = [];
  private freeBytes = 0;
  private readonly maxFreeBytes: number;
  private nextTask = 1;
  private nextSlot = 1;
  private closed = false;

  constructor(options: ChunkPoolOptions = {}) {
    this.size = options.workers ?? Math.max(1, availableParallelism());
    this.maxFreeBytes = options.maxFreeBytes ?? DEFAULT_MAX_FREE_BYTES;
    raiseMallocThresholds();
    for (let i = 0; i < this.size; i++) this.workers.push(this.spawn());
  }

  private spawn(): WorkerSlot {
    const worker = new Worker(WORKER_URL);
    const slot: WorkerSlot = { worker, inflight: 0, tasks: new Set() };
    worker.on('message', (msg: WorkerResponse) => this.settle(msg));
    worker.on('error', (err) => this.replace(slot, `chunk worker failed: ${err.message}`));
    worker.on('exit', (code) => this.replace(slot, `chunk worker exited with code ${code}`));
    // After the listeners (adding a 'message' listener refs the port again): an idle pool must not
    // keep the process alive; run() refs a worker while it has work.
    worker.unref();
    for (const [domainId, keys] of this.inlineKeys) {
      worker.postMessage({ op: 'keys', domainId, idKey: new Uint8Array(keys.idKey), encKey: new Uint8Array(keys.encKey) } satisfies WorkerRequest);
    }
    for (const [id, memory] of this.slotMemory) worker.postMessage({ op: 'slot', slot: id, memory } satisfies WorkerRequest);
    return slot;
  }

  /**
   * A worker that died is replaced by a fresh one (told every key and slot), and the tasks it held fail with
   * a clear error, so no caller waits forever and the pool keeps its size.
   */
  private replace(dead: WorkerSlot, reason: string): void {
    const at = this.workers.indexOf(dead);
    if (at < 0 || this.closed) return; // replaced already ('error' is followed by 'exit'), or closing
    this.workers[at] = this.spawn();
    for (const taskId of dead.tasks) {
      const p = this.pending.get(taskId);
      this.pending.delete(taskId);
      p?.reject(new ChunkWorkerError(reason));
    }
    dead.tasks.clear();
    void dead.worker.terminate().catch(() => undefined);
  }

  /** Makes a key domain known to every worker (and to the inline path). */
  registerDomain(domainId: string, keys: DomainKeys): void {
    if (this.inlineKeys.has(domainId)) return;
    this.inlineKeys.set(domainId, keys);
    for (const w of this.workers) {
      w.worker.postMessage({ op: 'keys', domainId, idKey: new Uint8Array(keys.idKey), encKey: new Uint8Array(keys.encKey) } satisfies WorkerRequest);
    }
  }

  /** A slot of at least `bytes`: the smallest free one that fits (within twice the request), or a new one. */
  acquire(bytes: number): Slot {
    const capacity = Math.max(SLOT_GRANULE, Math.ceil(bytes / SLOT_GRANULE) * SLOT_GRANULE);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.buf.length;
      if (size >= capacity && size <= 2 * capacity && (best < 0 || size < this.free[best]!.buf.length)) best = i;
    }
    if (best >= 0) {
      const [slot] = this.free.splice(best, 1);
      this.freeBytes -= slot!.buf.length;
      return slot!;
    }
    // Page-aligned, so a restore can write a slot's plaintext to a file without the page cache.
    const memory = allocatePageAlignedShared(capacity);
    const slot: Slot = { id: this.nextSlot++, buf: Buffer.from(memory, 0, capacity) };
    this.slotMemory.set(slot.id, memory);
    for (const w of this.workers) w.worker.postMessage({ op: 'slot', slot: slot.id, memory } satisfies WorkerRequest);
    return slot;
  }

  release(slot: Slot): void {
    this.free.push(slot);
    this.freeBytes += slot.buf.length;
    // Give back the oldest free slots beyond the cap (the workers forget them too).
    while (this.freeBytes > this.maxFreeBytes && this.free.length > 1) {
      const dropped = this.free.shift()!;
      this.freeBytes -= dropped.buf.length;
      this.slotMemory.delete(dropped.id);
      for (const w of this.workers) w.worker.postMessage({ op: 'drop', slot: dropped.id } satisfies WorkerRequest);
    }
  }

  /** Bytes of slot memory held free for reuse. */
  get freeSlotBytes(): number {
    return this.freeBytes;
  }

  /** Ids and zero flags for each `blockSize` block of the first `length` bytes of `slot`. */
  async digest(domainId: string, slot: Slot, length: number, blockSize: number): Promise<DigestResult> {
    if (this.size === 0) return digestBlocks(this.keys(domainId), slot.buf.subarray(0, length), blockSize);
    const r = await this.run({ op: 'digest', taskId: 0, domainId, slot: slot.id, length, blockSize });
    if (r.op !== 'digest') throw new Error('unexpected worker response');
    return { ids: Buffer.from(r.ids.buffer, r.ids.byteOffset, r.ids.byteLength), zero: r.zero };
  }

  /** Seals the listed blocks of the first `length` bytes of `slot` into a new output slot. */
  async seal(domainId: string, slot: Slot, length: number, blockSize: number, blocks: number[], ids: Uint8Array): Promise<SealOutput> {
    const out = this.acquire(sealCapacity(length, blockSize, blocks));
    try {
      if (this.size === 0) return { out, lengths: sealBlocks(this.keys(domainId), slot.buf.subarray(0, length), blockSize, blocks, ids, out.buf, sealedChunkGarbage) };
      const r = await this.run({ op: 'seal', taskId: 0, domainId, slot: slot.id, length, blockSize, blocks, ids, out: out.id });
      if (r.op !== 'seal') throw new Error('unexpected worker response');
      return { out, lengths: r.lengths };
    } catch (err) {
      this.release(out);
      throw err;
    }
  }

  /**
   * Opens and verifies sealed chunks in the first `length` bytes of `slot`; plaintexts land back to back in
   * a new output slot of `outBytes` (default: room for every chunk at `maxPlainBytes`). A chunk that does
   * not fit fails like one that does not verify. Ids are tree ids over `leafBytes` leaves (version-2
   * backups) or, with 0, version-1 ids.
   */
  async open(domainId: string, slot: Slot, length: number, chunks: OpenRequestChunk[], ids: Uint8Array, maxPlainBytes: number, outBytes = chunks.length * maxPlainBytes, leafBytes = 0): Promise<OpenOutput> {
    const out = this.acquire(outBytes);
    let result: OpenOutput;
    try {
      if (this.size === 0) {
        const r = openChunks(this.keys(domainId), slot.buf.subarray(0, length), chunks, ids, maxPlainBytes, out.buf, leafBytes);
        leftGarbage(chunks.reduce((n, c) => n + c.length, 0)); // the decrypted payloads, as a worker counts them
        result = r.ok ? { ...r, out } : r;
      } else {
        const r = await this.run({ op: 'open', taskId: 0, domainId, slot: slot.id, length, chunks, ids, maxPlainBytes, leafBytes, out: out.id });
        if (r.op !== 'open') throw new Error('unexpected worker response');
        result = 'failedIndex' in r ? { ok: false, index: r.failedIndex, reason: r.reason } : { ok: true, out, offsets: r.offsets, lengths: r.lengths };
      }
    } catch (err) {
      this.release(out);
      throw err;
    }
    if (!result.ok) this.release(out);
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.failAll(new Error('chunk pool closed'));
  }

  private keys(domainId: string): DomainKeys {
    const keys = this.inlineKeys.get(domainId);
    if (!keys) throw new Error(`domain ${domainId} is not registered with the chunk pool`);
    return keys;
  }

  private run(request: Extract<WorkerRequest, { taskId: number }>): Promise<WorkerResponse> {
    if (this.closed) return Promise.reject(new Error('chunk pool closed'));
    const taskId = this.nextTask++;
    const w = this.workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    // A worker with work keeps the process alive; an idle one does not.
    if (w.inflight++ === 0) w.worker.ref();
    const idle = () => {
      if (--w.inflight === 0) w.worker.unref();
    };
    const { promise, resolve, reject } = Promise.withResolvers<WorkerResponse>();
    w.tasks.add(taskId);
    this.pending.set(taskId, {
      worker: w,
      resolve: (r) => { idle(); resolve(r); },
      reject: (e) => { idle(); reject(e); },
    });
    w.worker.postMessage({ ...request, taskId });
    return promise.then((r) => {
      if (r.op === 'error') throw new Error(`chunk worker failed: ${r.message}`);
      return r;
    });
  }

  private settle(msg: WorkerResponse): void {
    const p = this.pending.get(msg.taskId);
    if (!p) return;
    this.pending.delete(msg.taskId);
    p.worker.tasks.delete(msg.taskId);
    p.resolve(msg);
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(err);
    }
  }
}

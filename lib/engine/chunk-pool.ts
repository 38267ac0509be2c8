// A pool of worker threads for the per-chunk CPU work (hash, compress, encrypt and the reverse).
// Buffers move to a worker and back (transfer, no copy). With size 0 the same operations run inline,
// which is what a single-vCPU Lambda or a bundle without the worker file uses.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DomainKeys } from './chunk-codec.ts';
import { digestBlocks, openChunks, sealBlocks } from './chunk-ops.ts';
import type { DigestResult, OpenRequestChunk, OpenResult, SealResult } from './chunk-ops.ts';

export type WorkerRequest =
  | { op: 'keys'; domainId: string; idKey: Uint8Array; encKey: Uint8Array }
  | { op: 'digest'; taskId: number; domainId: string; data: ArrayBuffer; length: number; blockSize: number }
  | { op: 'seal'; taskId: number; domainId: string; data: ArrayBuffer; length: number; blockSize: number; blocks: number[]; ids: Uint8Array }
  | { op: 'open'; taskId: number; domainId: string; data: ArrayBuffer; length: number; chunks: OpenRequestChunk[]; ids: Uint8Array; maxPlainBytes: number };

export type WorkerResponse =
  | { taskId: number; op: 'digest'; data: ArrayBuffer; ids: ArrayBuffer; zero: Uint8Array }
  | { taskId: number; op: 'seal'; data: ArrayBuffer; sealed: ArrayBuffer; lengths: number[] }
  | { taskId: number; op: 'open'; plain: ArrayBuffer; offsets: number[]; lengths: number[] }
  | { taskId: number; op: 'open'; failedIndex: number; reason: string }
  | { taskId: number; op: 'error'; message: string };

const WORKER_URL = new URL('./chunk-worker.ts', import.meta.url);

/** A buffer that owns its whole ArrayBuffer, so it can be moved to a worker. */
export function allocTransferable(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

interface Pending {
  resolve(r: WorkerResponse): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  inflight: number;
}

export interface ChunkPoolOptions {
  /** Worker threads; 0 runs everything inline on the calling thread. Default: all cores. */
  workers?: number;
}

export class ChunkPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly inlineKeys = new Map<string, DomainKeys>();
  private nextTask = 1;
  private closed = false;

  constructor(options: ChunkPoolOptions = {}) {
    this.size = options.workers ?? Math.max(1, availableParallelism());
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(WORKER_URL);
      worker.on('message', (msg: WorkerResponse) => this.settle(msg));
      worker.on('error', (err) => this.failAll(err));
      // After the listeners (adding a 'message' listener refs the port again): an idle pool must not
      // keep the process alive; run() refs a worker while it has work.
      worker.unref();
      this.slots.push({ worker, inflight: 0 });
    }
  }

  /** Makes a key domain known to every worker (and to the inline path). */
  registerDomain(domainId: string, keys: DomainKeys): void {
    if (this.inlineKeys.has(domainId)) return;
    this.inlineKeys.set(domainId, keys);
    for (const slot of this.slots) {
      slot.worker.postMessage({ op: 'keys', domainId, idKey: new Uint8Array(keys.idKey), encKey: new Uint8Array(keys.encKey) } satisfies WorkerRequest);
    }
  }

  /** Ids and zero flags for each `blockSize` block of `data`. `data` must own its ArrayBuffer; it is returned. */
  async digest(domainId: string, data: Buffer, blockSize: number): Promise<DigestResult & { data: Buffer }> {
    if (this.size === 0) return { ...digestBlocks(this.keys(domainId), data, blockSize), data };
    const length = data.length; // read before the transfer detaches `data`
    const r = await this.run({ op: 'digest', taskId: 0, domainId, data: data.buffer as ArrayBuffer, length, blockSize }, [data.buffer as ArrayBuffer]);
    if (r.op !== 'digest') throw new Error('unexpected worker response');
    const back = Buffer.from(r.data, 0, length);
    return { ids: Buffer.from(r.ids), zero: r.zero, data: back };
  }

  /** Seals the listed blocks of `data`; `data` must own its ArrayBuffer and is returned. */
  async seal(domainId: string, data: Buffer, blockSize: number, blocks: number[], ids: Buffer): Promise<SealResult & { data: Buffer }> {
    if (this.size === 0) return { ...sealBlocks(this.keys(domainId), data, blockSize, blocks, ids), data };
    const length = data.length;
    const r = await this.run(
      { op: 'seal', taskId: 0, domainId, data: data.buffer as ArrayBuffer, length, blockSize, blocks, ids: new Uint8Array(ids) },
      [data.buffer as ArrayBuffer],
    );
    if (r.op !== 'seal') throw new Error('unexpected worker response');
    const total = r.lengths.reduce((a, b) => a + b, 0);
    return { sealed: Buffer.from(r.sealed, 0, total), lengths: r.lengths, data: Buffer.from(r.data, 0, length) };
  }

  /** Opens and verifies sealed chunks in `data` (which is consumed). */
  async open(domainId: string, data: Buffer, chunks: OpenRequestChunk[], ids: Buffer, maxPlainBytes: number): Promise<OpenResult> {
    if (this.size === 0) return openChunks(this.keys(domainId), data, chunks, ids, maxPlainBytes);
    const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : Buffer.from(data);
    const r = await this.run(
      { op: 'open', taskId: 0, domainId, data: owned.buffer as ArrayBuffer, length: owned.length, chunks, ids: new Uint8Array(ids), maxPlainBytes },
      [owned.buffer as ArrayBuffer],
    );
    if (r.op !== 'open') throw new Error('unexpected worker response');
    if ('failedIndex' in r) return { ok: false, index: r.failedIndex, reason: r.reason };
    const total = r.lengths.reduce((a, b) => a + b, 0);
    return { ok: true, plain: Buffer.from(r.plain, 0, total), offsets: r.offsets, lengths: r.lengths };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.failAll(new Error('chunk pool closed'));
  }

  private keys(domainId: string): DomainKeys {
    const keys = this.inlineKeys.get(domainId);
    if (!keys) throw new Error(`domain ${domainId} is not registered with the chunk pool`);
    return keys;
  }

  private run(request: Exclude<WorkerRequest, { op: 'keys' }>, transfer: ArrayBuffer[]): Promise<WorkerResponse> {
    if (this.closed) return Promise.reject(new Error('chunk pool closed'));
    const taskId = this.nextTask++;
    const slot = this.slots.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    // A worker with work keeps the process alive; an idle one does not.
    if (slot.inflight++ === 0) slot.worker.ref();
    const idle = () => {
      if (--slot.inflight === 0) slot.worker.unref();
    };
    const { promise, resolve, reject } = Promise.withResolvers<WorkerResponse>();
    this.pending.set(taskId, {
      resolve: (r) => { idle(); resolve(r); },
      reject: (e) => { idle(); reject(e); },
    });
    slot.worker.postMessage({ ...request, taskId }, transfer);
    return promise.then((r) => {
      if (r.op === 'error') throw new Error(`chunk worker failed: ${r.message}`);
      return r;
    });
  }

  private settle(msg: WorkerResponse): void {
    const p = this.pending.get(msg.taskId);
    if (!p) return;
    this.pending.delete(msg.taskId);
    p.resolve(msg);
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(err);
    }
  }
}

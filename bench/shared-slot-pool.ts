// A bench-only variant of the engine's chunk pool that moves no buffers between threads: batch data and
// sealed output live in SharedArrayBuffer slots handed to every worker once, and messages carry only
// slot numbers. The per-chunk work is the engine's own (digestBlocks, sealChunk) and the sealed bytes
// have the engine's format. It exists to measure what per-batch ArrayBuffer transfers cost the engine
// (each transfer is new external memory for V8, which triggers GCs); lib/engine does not use it.
// This file is both the main-thread pool and, when loaded as a worker, the worker body.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CHUNK_ID_BYTES, SEAL_OVERHEAD, sealChunk } from '../lib/engine/chunk-codec.ts';
import type { DomainKeys } from '../lib/engine/chunk-codec.ts';
import { digestBlocks } from '../lib/engine/chunk-ops.ts';

interface Init {
  idKey: Uint8Array;
  encKey: Uint8Array;
  blockSize: number;
  data: SharedArrayBuffer[];
  out: SharedArrayBuffer[];
}

type Request =
  | { op: 'digest'; taskId: number; slot: number; length: number }
  | { op: 'seal'; taskId: number; slot: number; length: number; outSlot: number; blocks: number[]; ids: Uint8Array };

type Response = { taskId: number; ids?: Uint8Array; zero?: Uint8Array; lengths?: number[]; error?: string };

export class SharedSlotPool {
  readonly size: number;
  /** Batch buffers (shared): fill one, then digest/seal it by slot number. */
  readonly slots: Buffer[];
  private readonly outs: Buffer[];
  private readonly freeOuts: number[];
  private readonly workers: Array<{ worker: Worker; inflight: number }> = [];
  private readonly pending = new Map<number, (r: Response) => void>();
  private nextTask = 1;

  constructor(size: number, keys: DomainKeys, blockSize: number, slotBytes: number, slotCount: number, outCount: number) {
    this.size = size;
    const outBytes = Math.ceil(slotBytes / blockSize) * (blockSize + SEAL_OVERHEAD);
    const data = Array.from({ length: slotCount }, () => new SharedArrayBuffer(slotBytes));
    const out = Array.from({ length: outCount }, () => new SharedArrayBuffer(outBytes));
    this.slots = data.map((sab) => Buffer.from(sab));
    this.outs = out.map((sab) => Buffer.from(sab));
    this.freeOuts = out.map((_, i) => i);
    const init: Init = { idKey: new Uint8Array(keys.idKey), encKey: new Uint8Array(keys.encKey), blockSize, data, out };
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL(import.meta.url), { workerData: init });
      worker.on('message', (r: Response) => {
        const done = this.pending.get(r.taskId);
        this.pending.delete(r.taskId);
        done?.(r);
      });
      worker.unref(); // after the listener, which refs the port again
      this.workers.push({ worker, inflight: 0 });
    }
  }

  private run(req: Request): Promise<Response> {
    const slot = this.workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    slot.inflight++;
    const taskId = this.nextTask++;
    const { promise, resolve, reject } = Promise.withResolvers<Response>();
    this.pending.set(taskId, (r) => {
      slot.inflight--;
      if (r.error) reject(new Error(r.error));
      else resolve(r);
    });
    slot.worker.postMessage({ ...req, taskId });
    return promise;
  }

  async digest(slot: number, length: number): Promise<{ ids: Buffer; zero: Uint8Array }> {
    const r = await this.run({ op: 'digest', taskId: 0, slot, length });
    return { ids: Buffer.from(r.ids!), zero: r.zero! };
  }

  /** Seals into a free output slot; `release(outSlot)` once the sealed bytes are packed. */
  async seal(slot: number, length: number, blocks: number[], ids: Buffer): Promise<{ outSlot: number; sealed: Buffer; lengths: number[] }> {
    const outSlot = this.freeOuts.pop();
    if (outSlot === undefined) throw new Error('no free output slot');
    const r = await this.run({ op: 'seal', taskId: 0, slot, length, outSlot, blocks, ids: new Uint8Array(ids) });
    const total = r.lengths!.reduce((a, b) => a + b, 0);
    return { outSlot, sealed: this.outs[outSlot]!.subarray(0, total), lengths: r.lengths! };
  }

  release(outSlot: number): void {
    this.freeOuts.push(outSlot);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const init = workerData as Init;
  const keys: DomainKeys = { idKey: Buffer.from(init.idKey), encKey: Buffer.from(init.encKey) };
  const data = init.data.map((sab) => Buffer.from(sab));
  const out = init.out.map((sab) => Buffer.from(sab));
  port.on('message', (msg: Request) => {
    try {
      const batch = data[msg.slot]!.subarray(0, msg.length);
      if (msg.op === 'digest') {
        const r = digestBlocks(keys, batch, init.blockSize);
        port.postMessage({ taskId: msg.taskId, ids: new Uint8Array(r.ids), zero: r.zero } satisfies Response);
        return;
      }
      const target = out[msg.outSlot]!;
      const lengths: number[] = [];
      let at = 0;
      msg.blocks.forEach((b, i) => {
        const block = batch.subarray(b * init.blockSize, Math.min(batch.length, (b + 1) * init.blockSize));
        const len = sealChunk(keys, msg.ids.subarray(i * CHUNK_ID_BYTES, (i + 1) * CHUNK_ID_BYTES), block, target, at);
        lengths.push(len);
        at += len;
      });
      port.postMessage({ taskId: msg.taskId, lengths } satisfies Response);
    } catch (err) {
      port.postMessage({ taskId: msg.taskId, error: err instanceof Error ? err.message : String(err) } satisfies Response);
    }
  });
}

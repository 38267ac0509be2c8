// Worker thread body for the chunk pool: runs chunk-ops on the pool's shared slots.
// Loaded by Node from the sources (type stripping: explicit .ts paths, erasable syntax only) or bundled beside
// its entry as chunk-worker.mjs (scripts/build.mjs for npm start, infra/constructs/functions.ts for Lambda).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { digestBlocks, openChunks, sealBlocks } from './chunk-ops.ts';
import type { WorkerRequest, WorkerResponse } from './chunk-pool.ts';
import type { DomainKeys } from './chunk-codec.ts';

// Every chunk sealed leaves about a block's worth of short-lived buffers (zlib and cipher outputs: Node's
// public APIs cannot write into a given buffer); every chunk opened, its decrypted payload (it decompresses
// into the output slot, zstd-into.ts). V8 collects them only once tens of MiB have piled up in
// this thread, and the thread's malloc arena then keeps that high-water mark resident. A young-generation
// collection after every GC_EVERY_BYTES of work bounds it to about that much: after every range a restore
// opens and every batch a backup seals (measured: 20-30 MB less peak RSS for a restore than every 8 MiB,
// no more CPU; the cost of collecting is in giving memory back, see raiseMallocThresholds in chunk-pool.ts).
const GC_EVERY_BYTES = 4 * 1024 * 1024;
setFlagsFromString('--expose-gc');
const collectYoung = runInNewContext('gc') as (options: { type: 'minor' }) => void;
let sinceCollection = 0;

const domains = new Map<string, DomainKeys>();
const slots = new Map<number, Buffer>();

function keysFor(domainId: string): DomainKeys {
  const keys = domains.get(domainId);
  if (!keys) throw new Error(`domain ${domainId} is not registered with this worker`);
  return keys;
}

function slot(id: number): Buffer {
  const buf = slots.get(id);
  if (!buf) throw new Error(`slot ${id} is not known to this worker`);
  return buf;
}

/** About how many bytes of short-lived buffers an operation leaves (a bound, not a measure). */
function garbageBytes(msg: Extract<WorkerRequest, { taskId: number }>): number {
  if (msg.op === 'open') return msg.chunks.reduce((n, c) => n + c.length, 0); // decrypted payloads
  if (msg.op === 'seal') return 2 * msg.length; // compressed blocks, ciphertexts
  return 0;
}

parentPort!.on('message', (msg: WorkerRequest) => {
  if (msg.op === 'keys') {
    domains.set(msg.domainId, { idKey: Buffer.from(msg.idKey), encKey: Buffer.from(msg.encKey) });
    return;
  }
  if (msg.op === 'slot') {
    slots.set(msg.slot, Buffer.from(msg.memory));
    return;
  }
  if (msg.op === 'drop') {
    slots.delete(msg.slot);
    return;
  }
  let response: WorkerResponse;
  try {
    const data = slot(msg.slot).subarray(0, msg.length);
    if (msg.op === 'digest') {
      const r = digestBlocks(keysFor(msg.domainId), data, msg.blockSize);
      response = { taskId: msg.taskId, op: 'digest', ids: r.ids, zero: r.zero };
    } else if (msg.op === 'seal') {
      const lengths = sealBlocks(keysFor(msg.domainId), data, msg.blockSize, msg.blocks, msg.ids, slot(msg.out));
      response = { taskId: msg.taskId, op: 'seal', lengths };
    } else {
      const r = openChunks(keysFor(msg.domainId), data, msg.chunks, msg.ids, msg.maxPlainBytes, slot(msg.out), msg.leafBytes);
      response = r.ok
        ? { taskId: msg.taskId, op: 'open', offsets: r.offsets, lengths: r.lengths }
        : { taskId: msg.taskId, op: 'open', failedIndex: r.index, reason: r.reason };
    }
  } catch (err) {
    response = { taskId: msg.taskId, op: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(response);
  sinceCollection += garbageBytes(msg);
  if (sinceCollection >= GC_EVERY_BYTES) {
    sinceCollection = 0;
    collectYoung({ type: 'minor' });
  }
});

// Worker thread body for the chunk pool: runs chunk-ops on the pool's shared slots.
// Loaded by Node from the sources (type stripping: explicit .ts paths, erasable syntax only) or bundled beside
// its entry as chunk-worker.mjs (scripts/build.mjs for npm start, infra/constructs/functions.ts for Lambda).
import { parentPort } from 'node:worker_threads';
import { digestBlocks, openChunks, sealBlocks } from './chunk-ops.ts';
import { leftGarbage, sealedChunkGarbage } from './chunk-garbage.ts';
import type { WorkerRequest, WorkerResponse } from './chunk-pool.ts';
import type { DomainKeys } from './chunk-codec.ts';

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
      const lengths = sealBlocks(keysFor(msg.domainId), data, msg.blockSize, msg.blocks, msg.ids, slot(msg.out), sealedChunkGarbage);
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
  // The decrypted payloads of the chunks opened.
  if (msg.op === 'open') leftGarbage(msg.chunks.reduce((n, c) => n + c.length, 0));
});

// Worker thread body for the chunk pool: runs chunk-ops on buffers moved in from the main thread.
// Loaded directly by Node (type stripping), so it imports with explicit .ts paths and erasable syntax only.
import { parentPort } from 'node:worker_threads';
import { digestBlocks, openChunks, sealBlocks } from './chunk-ops.ts';
import type { WorkerRequest, WorkerResponse } from './chunk-pool.ts';
import type { DomainKeys } from './chunk-codec.ts';

const domains = new Map<string, DomainKeys>();

function keysFor(domainId: string): DomainKeys {
  const keys = domains.get(domainId);
  if (!keys) throw new Error(`domain ${domainId} is not registered with this worker`);
  return keys;
}

function arrayBufferOf(buf: Buffer): ArrayBuffer {
  // Results own their ArrayBuffer (allocUnsafeSlow / alloc), so it moves without a copy; the
  // receiver reads only the lengths it is told. Copy only a view into someone else's memory.
  if (buf.byteOffset === 0) return buf.buffer as ArrayBuffer;
  return new Uint8Array(buf).buffer as ArrayBuffer;
}

parentPort!.on('message', (msg: WorkerRequest) => {
  if (msg.op === 'keys') {
    domains.set(msg.domainId, { idKey: Buffer.from(msg.idKey), encKey: Buffer.from(msg.encKey) });
    return;
  }
  let response: WorkerResponse;
  const transfer: ArrayBuffer[] = [];
  try {
    const data = Buffer.from(msg.data, 0, msg.length);
    if (msg.op === 'digest') {
      const r = digestBlocks(keysFor(msg.domainId), data, msg.blockSize);
      const ids = arrayBufferOf(r.ids);
      response = { taskId: msg.taskId, op: 'digest', data: msg.data, ids, zero: r.zero };
      transfer.push(msg.data, ids);
    } else if (msg.op === 'seal') {
      const r = sealBlocks(keysFor(msg.domainId), data, msg.blockSize, msg.blocks, Buffer.from(msg.ids));
      const sealed = arrayBufferOf(r.sealed);
      response = { taskId: msg.taskId, op: 'seal', data: msg.data, sealed, lengths: r.lengths };
      transfer.push(msg.data, sealed);
    } else {
      const r = openChunks(keysFor(msg.domainId), data, msg.chunks, Buffer.from(msg.ids), msg.maxPlainBytes);
      if (r.ok) {
        const plain = arrayBufferOf(r.plain);
        response = { taskId: msg.taskId, op: 'open', plain, offsets: r.offsets, lengths: r.lengths };
        transfer.push(plain);
      } else {
        response = { taskId: msg.taskId, op: 'open', failedIndex: r.index, reason: r.reason };
      }
    }
  } catch (err) {
    response = { taskId: msg.taskId, op: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(response, transfer);
});

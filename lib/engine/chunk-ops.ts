// Batch operations over many blocks or chunks, shared by the worker threads and the inline pool.
// Outputs go into buffers the caller provides (the pool's shared slots), so nothing is allocated per batch.
import { CHUNK_ID_BYTES, ChunkIntegrityError, SEAL_OVERHEAD, chunkId, isAllZero, openChunkInto, sealChunk } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';

export interface DigestResult {
  /** Chunk id per block, 32 bytes each; all zero for an all-zero block. */
  ids: Buffer;
  /** 1 where the block is all zeros. */
  zero: Uint8Array;
}

/** Splits `data` into `blockSize` blocks (the last may be short), flags zero blocks and ids the rest. */
export function digestBlocks(keys: DomainKeys, data: Buffer, blockSize: number): DigestResult {
  const count = Math.ceil(data.length / blockSize);
  const ids = Buffer.alloc(count * CHUNK_ID_BYTES);
  const zero = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const block = data.subarray(i * blockSize, Math.min(data.length, (i + 1) * blockSize));
    if (isAllZero(block)) zero[i] = 1;
    else ids.set(chunkId(keys, block), i * CHUNK_ID_BYTES);
  }
  return { ids, zero };
}

/** Bytes `sealBlocks` may need for these blocks of `dataLength` bytes. */
export function sealCapacity(dataLength: number, blockSize: number, blocks: number[]): number {
  let capacity = 0;
  for (const b of blocks) capacity += Math.min(blockSize, dataLength - b * blockSize) + SEAL_OVERHEAD;
  return capacity;
}

/**
 * Seals the given blocks of `data` (by index) whose ids are in `ids` (32 bytes per listed block),
 * back to back into `out` (at least sealCapacity bytes). Returns each sealed length. `afterChunk` is told
 * each chunk's plaintext bytes once it is sealed (a worker collects its garbage by it).
 */
export function sealBlocks(keys: DomainKeys, data: Buffer, blockSize: number, blocks: number[], ids: Uint8Array, out: Buffer, afterChunk?: (plainBytes: number) => void): number[] {
  const lengths: number[] = [];
  let at = 0;
  blocks.forEach((b, i) => {
    const block = data.subarray(b * blockSize, Math.min(data.length, (b + 1) * blockSize));
    const len = sealChunk(keys, ids.subarray(i * CHUNK_ID_BYTES, (i + 1) * CHUNK_ID_BYTES), block, out, at);
    lengths.push(len);
    at += len;
    afterChunk?.(block.length);
  });
  return lengths;
}

export interface OpenRequestChunk {
  /** Offset and length of the sealed chunk inside the data buffer. */
  offset: number;
  length: number;
}

export type OpenResult = { ok: true; offsets: number[]; lengths: number[] } | { ok: false; index: number; reason: string };

/**
 * Opens and verifies sealed chunks held in `data`; plaintexts go back to back into `out`
 * (at least chunks.length x maxPlainBytes). Ids are tree ids over `leafBytes` leaves (version-2 backups)
 * or, with 0, version-1 ids. Stops at the first chunk that does not verify.
 */
export function openChunks(keys: DomainKeys, data: Buffer, chunks: OpenRequestChunk[], ids: Uint8Array, maxPlainBytes: number, out: Buffer, leafBytes = 0): OpenResult {
  const offsets: number[] = [];
  const lengths: number[] = [];
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    try {
      if (c.offset + c.length > data.length) throw new ChunkIntegrityError('sealed chunk lies beyond the data read');
      // Each chunk opens straight into its place in `out`, with room for the largest chunk and no more.
      const room = out.subarray(at, Math.min(out.length, at + maxPlainBytes));
      const length = openChunkInto(keys, ids.subarray(i * CHUNK_ID_BYTES, (i + 1) * CHUNK_ID_BYTES), data.subarray(c.offset, c.offset + c.length), room, leafBytes);
      offsets.push(at);
      lengths.push(length);
      at += length;
    } catch (err) {
      return { ok: false, index: i, reason: err instanceof Error ? err.message : String(err) };
    }
  }
  return { ok: true, offsets, lengths };
}

// Per-chunk CPU work: keyed chunk ids, zstd compression and AES-256-GCM sealing, and the reverse.
// Pure functions over buffers so they run the same inside a worker thread or inline.
//
// Sealed chunk layout: flags(1) | nonce(12) | ciphertext | tag(16)
//   flags bit 0: payload is zstd-compressed (otherwise stored raw because it did not shrink)
//   AAD = chunk id (32 bytes) || flags, so a blob cannot be swapped for another chunk's.
// Chunk ids: version-1 backups use an HMAC of the whole plaintext; version-2 backups a tree id over the
// HMACs of its sub-chunk-sized leaves, so a block's sub-chunk fingerprints come from the same hashing pass.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomFillSync, timingSafeEqual } from 'node:crypto';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { zstdDecompressInto } from './zstd-into.ts';
import { copyBytes } from '../util/aligned-memory.ts';

export const CHUNK_ID_BYTES = 32;
export const SEAL_OVERHEAD = 1 + 12 + 16;
const FLAG_ZSTD = 1;
const KNOWN_FLAGS = FLAG_ZSTD;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/**
 * zstd for chunks, chosen by measurement (docs/format.md, "Compression"): the fast strategy with a 64K-entry
 * hash table and 5-byte matches. On 4 MiB extents of a real ext4 image it stores 9% less than level 1 did
 * on 512 KiB blocks, at 0.9x its speed; level 3 would store 3% less again at 0.8x. The window covers an
 * extent; frames record their content size, so a decoder needs no more than the chunk.
 */
export const CHUNK_ZSTD_PARAMS = {
  [zc.ZSTD_c_strategy]: zc.ZSTD_fast,
  [zc.ZSTD_c_windowLog]: 22,
  [zc.ZSTD_c_hashLog]: 16,
  [zc.ZSTD_c_chainLog]: 16,
  [zc.ZSTD_c_searchLog]: 1,
  [zc.ZSTD_c_minMatch]: 5,
};
const TREE_LABEL = Buffer.from('openvbs/tree/v1');

export interface DomainKeys {
  /** HMAC-SHA256 key for chunk ids. */
  idKey: Buffer;
  /** AES-256-GCM key for chunk payloads, pack headers and manifests. */
  encKey: Buffer;
}

/** Splits one 256-bit data key into independent id and encryption keys (HKDF-SHA256). */
export function deriveDomainKeys(dataKey: Uint8Array, domainId: string): DomainKeys {
  const derive = (purpose: string) =>
    Buffer.from(hkdfSync('sha256', dataKey, Buffer.from(domainId), Buffer.from(`openvbs/${purpose}/v1`), 32));
  return { idKey: derive('chunk-id'), encKey: derive('chunk-enc') };
}

/** Version-1 chunk id: HMAC-SHA256 of the whole plaintext. */
export function chunkId(keys: DomainKeys, plaintext: Uint8Array): Buffer {
  return createHmac('sha256', keys.idKey).update(plaintext).digest();
}

/** HMAC of each `leafBytes` leaf of `plaintext` (the last may be short), 32 zero bytes for an all-zero leaf. */
export function leafHashes(keys: DomainKeys, plaintext: Uint8Array, leafBytes: number): Buffer {
  const count = Math.ceil(plaintext.length / leafBytes);
  const leaves = Buffer.alloc(count * CHUNK_ID_BYTES);
  for (let i = 0; i < count; i++) {
    const leaf = plaintext.subarray(i * leafBytes, Math.min(plaintext.length, (i + 1) * leafBytes));
    if (!isAllZero(leaf)) leaves.set(chunkId(keys, leaf), i * CHUNK_ID_BYTES);
  }
  return leaves;
}

/**
 * Version-2 chunk id of a `length`-byte plaintext from its leaf hashes (leafHashes):
 * HMAC-SHA256(idKey, "openvbs/tree/v1" || leafBytes u32 LE || length u32 LE || leaves).
 */
export function treeId(keys: DomainKeys, leaves: Uint8Array, leafBytes: number, length: number): Buffer {
  const sizes = Buffer.allocUnsafe(8);
  sizes.writeUInt32LE(leafBytes, 0);
  sizes.writeUInt32LE(length, 4);
  return createHmac('sha256', keys.idKey).update(TREE_LABEL).update(sizes).update(leaves).digest();
}

/** The id a plaintext must have: a tree id over `leafBytes` leaves, or (leafBytes 0) the version-1 HMAC. */
export function contentId(keys: DomainKeys, plaintext: Uint8Array, leafBytes: number): Buffer {
  return leafBytes ? treeId(keys, leafHashes(keys, plaintext, leafBytes), leafBytes, plaintext.length) : chunkId(keys, plaintext);
}

const ZERO_PAGE = Buffer.alloc(64 * 1024);

/** True when every byte is zero (memcmp against a zero page: ~25x a word loop, any alignment). */
export function isAllZero(buf: Uint8Array): boolean {
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let at = 0; at < view.length; at += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, view.length - at);
    if (ZERO_PAGE.compare(view, at, at + n, 0, n) !== 0) return false;
  }
  return true;
}

function aad(id: Uint8Array, flags: number): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_ID_BYTES + 1);
  out.set(id, 0);
  out[CHUNK_ID_BYTES] = flags;
  return out;
}

/** Encrypts `payload` under `key` with authenticated data `ad`, writing flags|nonce|ct|tag into `out` at `at`. */
export function sealInto(key: Buffer, flags: number, ad: Buffer, payload: Uint8Array, out: Buffer, at: number): number {
  out[at] = flags;
  const nonce = out.subarray(at + 1, at + 1 + NONCE_BYTES);
  randomFillSync(nonce);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(ad);
  let pos = at + 1 + NONCE_BYTES;
  const body = cipher.update(payload);
  copyBytes(body, out, pos); // `out` is usually a slot of shared memory: see aligned-memory.ts
  pos += body.length;
  const tail = cipher.final();
  out.set(tail, pos);
  pos += tail.length;
  out.set(cipher.getAuthTag(), pos);
  return pos + TAG_BYTES - at;
}

/** Compresses (when it helps) and seals one chunk into `out` at `at`; returns the sealed length. */
export function sealChunk(keys: DomainKeys, id: Uint8Array, plaintext: Uint8Array, out: Buffer, at: number): number {
  // One output chunk large enough for the whole result avoids zlib growing its output piecewise.
  const compressed = zstdCompressSync(plaintext, { chunkSize: plaintext.length + 64 * 1024, params: CHUNK_ZSTD_PARAMS });
  const useZstd = compressed.length < plaintext.length;
  const flags = useZstd ? FLAG_ZSTD : 0;
  return sealInto(keys.encKey, flags, aad(id, flags), useZstd ? compressed : plaintext, out, at);
}

export class ChunkIntegrityError extends Error {
  override name = 'ChunkIntegrityError';
}

function openSealed(key: Buffer, sealed: Uint8Array, adFor: (flags: number) => Buffer): { flags: number; payload: Buffer } {
  if (sealed.length < SEAL_OVERHEAD) throw new ChunkIntegrityError('sealed blob is truncated');
  const flags = sealed[0]!;
  // A flag this reader does not know changes how the payload is to be read: refuse rather than guess.
  if (flags & ~KNOWN_FLAGS) throw new ChunkIntegrityError(`unknown flags 0x${flags.toString(16).padStart(2, '0')} (written by a newer OpenVBS, or damaged)`);
  const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(adFor(flags));
  decipher.setAuthTag(tag);
  const body = decipher.update(sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    throw new ChunkIntegrityError('authentication tag mismatch (corrupted or foreign data)');
  }
  return { flags, payload: body };
}

/**
 * Decrypts, decompresses and verifies one chunk against its id (a tree id over `leafBytes` leaves, or with
 * 0 a version-1 id), writing its plaintext at the start of `out`; returns the plaintext's length. Throws
 * ChunkIntegrityError. The room in `out` (the largest chunk of the backup) bounds decompression, so a
 * forged payload cannot balloon.
 */
export function openChunkInto(keys: DomainKeys, id: Uint8Array, sealed: Uint8Array, out: Buffer, leafBytes = 0): number {
  const { flags, payload } = openSealed(keys.encKey, sealed, (f) => aad(id, f));
  let length: number;
  if (flags & FLAG_ZSTD) {
    try {
      length = zstdDecompressInto(payload, out);
    } catch {
      throw new ChunkIntegrityError('payload does not decompress to at most a chunk');
    }
  } else {
    if (payload.length > out.length) throw new ChunkIntegrityError('chunk is larger than the largest chunk of its backup');
    copyBytes(payload, out, 0);
    length = payload.length;
  }
  const actual = contentId(keys, out.subarray(0, length), leafBytes);
  if (!timingSafeEqual(actual, Buffer.from(id.buffer, id.byteOffset, id.byteLength))) {
    throw new ChunkIntegrityError('content does not match its chunk id');
  }
  return length;
}

/** openChunkInto for one chunk on its own: returns the plaintext in a buffer of its own. */
export function openChunk(keys: DomainKeys, id: Uint8Array, sealed: Uint8Array, maxPlainBytes = 4 * 1024 * 1024, leafBytes = 0): Buffer {
  const out = Buffer.allocUnsafe(maxPlainBytes);
  return Buffer.from(out.subarray(0, openChunkInto(keys, id, sealed, out, leafBytes)));
}

/** Seals a metadata blob (pack header, manifest): zstd then AES-GCM bound to a context label. */
export function sealMetadata(keys: DomainKeys, context: string, plaintext: Uint8Array): Buffer {
  const compressed = zstdCompressSync(plaintext);
  const out = Buffer.allocUnsafe(compressed.length + SEAL_OVERHEAD);
  const len = sealInto(keys.encKey, FLAG_ZSTD, metadataAad(context, FLAG_ZSTD), compressed, out, 0);
  return out.subarray(0, len);
}

/** The flags byte is authenticated along with the context, as for chunks. */
function metadataAad(context: string, flags: number): Buffer {
  return Buffer.concat([Buffer.from(context), Buffer.of(flags)]);
}

export function openMetadata(keys: DomainKeys, context: string, sealed: Uint8Array): Buffer {
  const { flags, payload } = openSealed(keys.encKey, sealed, (f) => metadataAad(context, f));
  if (!(flags & FLAG_ZSTD)) throw new ChunkIntegrityError('metadata is not compressed as written');
  return zstdDecompressSync(payload);
}

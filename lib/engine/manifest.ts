// Backup manifests, one object per segment: what each block of the segment is made of.
// Layout (docs/format.md): version(1) | sealed metadata (flags | nonce | ciphertext | tag)
// The version byte is in clear, so a reader can refuse a newer format before it needs a key, and is bound
// into the associated data with (backup, segment), so a manifest cannot be replayed elsewhere or relabelled.
// Payload of version 1: json length (u32 LE) | json { firstBlock, blockCount, stats } | ids (blockCount x 32 bytes)
//   Each block is one chunk whole (a version-1 id), or all zeros (the zero id).
// Payload of version 2: json length (u32 LE) | json { firstBlock, blockCount, blockSize, subChunkSize,
//   chunkCount, stats } | chunks (chunkCount x (id 32 | plaintext length u32 LE)) | fingerprints
//   (blockCount x blockSize/subChunkSize x 16) | piece counts (blockCount x u16 LE) | pieces (16 bytes
//   each: offset u32 | length u32 | chunk u32 | chunk offset u32, all LE)
//   A block is its pieces, each a range of a chunk (tree ids over subChunkSize leaves); what no piece
//   covers is zeros. Fingerprints let the next backup find which sub-chunks of a block changed.
import { CHUNK_ID_BYTES, ChunkIntegrityError, openMetadata, sealMetadata } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { BackupStats } from './ports.ts';

/** The version this OpenVBS writes. */
export const MANIFEST_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
/** Bytes of a sub-chunk fingerprint: the first half of its leaf hash (zeros for an all-zero sub-chunk). */
export const FINGERPRINT_BYTES = 16;
const PIECE_BYTES = 16;
const CHUNK_ENTRY_BYTES = CHUNK_ID_BYTES + 4;

export const ZERO_ID = Buffer.alloc(CHUNK_ID_BYTES);

/** The pieces of every block without any (frozen: shared by all of them). */
export const NO_PIECES: Piece[] = Object.freeze([]) as unknown as Piece[];

/** `length` bytes at `offset` in a block are bytes `chunkOffset`... of chunk number `chunk` of the manifest. */
export interface Piece {
  offset: number;
  length: number;
  chunk: number;
  chunkOffset: number;
}

interface ManifestCommon {
  firstBlock: number;
  blockCount: number;
  stats: BackupStats;
}

/** Version 1: one chunk id per block (the zero id for an all-zero block); each chunk is its block whole. */
export interface ManifestV1 extends ManifestCommon {
  version: 1;
  ids: Buffer;
}

/** Version 2: blocks made of pieces of chunks, with sub-chunk fingerprints. */
export interface ManifestV2 extends ManifestCommon {
  version: 2;
  blockSize: number;
  /** Fingerprint granularity, and the leaf size of the tree ids of this segment's chunks. */
  subChunkSize: number;
  /** The chunks the pieces refer to, 32 bytes each. */
  chunkIds: Buffer;
  /** Each chunk's plaintext length. */
  chunkLengths: Uint32Array;
  /** blockSize / subChunkSize fingerprints per block, FINGERPRINT_BYTES each. */
  fingerprints: Buffer;
  /** Per block, its pieces in ascending offset order. */
  pieces: Piece[][];
}

export type SegmentManifest = ManifestV1 | ManifestV2;

/** What a version-2 manifest holds besides its position; encodeManifest adds the counts. */
export type ManifestContent = Omit<ManifestV2, 'version'>;

/** A piece with its chunk resolved, as a restore needs it. */
export interface BlockPiece {
  offset: number;
  length: number;
  chunkId: Buffer;
  /** The chunk's whole plaintext length. */
  chunkLength: number;
  chunkOffset: number;
}

/** A manifest written in a format this reader does not know (a newer OpenVBS, or a damaged version byte). */
export class ManifestVersionError extends Error {
  override name = 'ManifestVersionError';
  readonly backupId: string;
  readonly segment: number;
  readonly version: number;

  constructor(backupId: string, segment: number, version: number) {
    super(`manifest ${segmentName(segment)} of backup ${backupId} has format version ${version}; this OpenVBS reads only versions ${READABLE_VERSIONS.join(' and ')}`);
    this.backupId = backupId;
    this.segment = segment;
    this.version = version;
  }
}

function segmentName(segment: number): string {
  return `seg-${String(segment).padStart(6, '0')}`;
}

export function manifestKey(prefix: string, segment: number): string {
  return `${prefix}${segmentName(segment)}`;
}

function context(version: number, backupId: string, segment: number) {
  return `manifest:v${version}:${backupId}:${segment}`;
}

function fingerprintsPerBlock(blockSize: number, subChunkSize: number): number {
  return blockSize / subChunkSize;
}

export function encodeManifest(keys: DomainKeys, backupId: string, segment: number, m: ManifestContent): Buffer {
  const chunkCount = m.chunkLengths.length;
  const json = Buffer.from(JSON.stringify({ firstBlock: m.firstBlock, blockCount: m.blockCount, blockSize: m.blockSize, subChunkSize: m.subChunkSize, chunkCount, stats: m.stats }));
  const pieceCount = m.pieces.reduce((n, p) => n + p.length, 0);
  const payload = Buffer.allocUnsafe(4 + json.length + chunkCount * CHUNK_ENTRY_BYTES + m.fingerprints.length + 2 * m.blockCount + PIECE_BYTES * pieceCount);
  let at = payload.writeUInt32LE(json.length, 0);
  at += json.copy(payload, at);
  for (let c = 0; c < chunkCount; c++) {
    at += m.chunkIds.copy(payload, at, c * CHUNK_ID_BYTES, (c + 1) * CHUNK_ID_BYTES);
    at = payload.writeUInt32LE(m.chunkLengths[c]!, at);
  }
  at += m.fingerprints.copy(payload, at);
  // Zero counts first: most blocks of a sparse volume have no pieces.
  payload.fill(0, at, at + 2 * m.blockCount);
  m.pieces.forEach((pieces, j) => {
    if (pieces.length) payload.writeUInt16LE(pieces.length, at + 2 * j);
  });
  at += 2 * m.blockCount;
  for (const pieces of m.pieces) {
    if (!pieces.length) continue;
    for (const p of pieces) {
      at = payload.writeUInt32LE(p.offset, at);
      at = payload.writeUInt32LE(p.length, at);
      at = payload.writeUInt32LE(p.chunk, at);
      at = payload.writeUInt32LE(p.chunkOffset, at);
    }
  }
  return Buffer.concat([Buffer.of(MANIFEST_VERSION), sealMetadata(keys, context(MANIFEST_VERSION, backupId, segment), payload)]);
}

/** Throws ManifestVersionError for an unknown version, ChunkIntegrityError when it does not verify. */
export function decodeManifest(keys: DomainKeys, backupId: string, segment: number, stored: Buffer): SegmentManifest {
  if (stored.length === 0) throw new ChunkIntegrityError(`manifest ${segmentName(segment)} of backup ${backupId} is empty`);
  const version = stored[0]!;
  if (!READABLE_VERSIONS.includes(version)) throw new ManifestVersionError(backupId, segment, version);
  const payload = openMetadata(keys, context(version, backupId, segment), stored.subarray(1));
  const inconsistent = (why: string) => new Error(`manifest ${backupId}/${segment} is inconsistent: ${why}`);
  if (payload.length < 4) throw inconsistent('no header');
  const jsonLength = payload.readUInt32LE(0);
  const meta = JSON.parse(payload.subarray(4, 4 + jsonLength).toString('utf8')) as Record<string, unknown>;
  const body = payload.subarray(4 + jsonLength);
  const common = { firstBlock: meta.firstBlock as number, blockCount: meta.blockCount as number, stats: { ...emptyStats(), ...(meta.stats as Partial<BackupStats>) } };
  if (version === 1) {
    if (body.length !== common.blockCount * CHUNK_ID_BYTES) throw inconsistent('the id list does not match blockCount');
    return { version, ...common, ids: body };
  }
  return decodeV2(common, meta, body, inconsistent);
}

function decodeV2(common: ManifestCommon, meta: Record<string, unknown>, body: Buffer, inconsistent: (why: string) => Error): ManifestV2 {
  const { blockCount } = common;
  const blockSize = meta.blockSize as number;
  const subChunkSize = meta.subChunkSize as number;
  const chunkCount = meta.chunkCount as number;
  const whole = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (![blockCount, blockSize, subChunkSize, chunkCount].every(whole) || !subChunkSize || blockSize % subChunkSize) {
    throw inconsistent('bad geometry');
  }
  const fingerprintBytes = blockCount * fingerprintsPerBlock(blockSize, subChunkSize) * FINGERPRINT_BYTES;
  let at = 0;
  const take = (n: number) => {
    if (at + n > body.length) throw inconsistent('truncated');
    const part = body.subarray(at, at + n);
    at += n;
    return part;
  };
  const chunks = take(chunkCount * CHUNK_ENTRY_BYTES);
  const chunkIds = Buffer.allocUnsafe(chunkCount * CHUNK_ID_BYTES);
  const chunkLengths = new Uint32Array(chunkCount);
  for (let c = 0; c < chunkCount; c++) {
    chunks.copy(chunkIds, c * CHUNK_ID_BYTES, c * CHUNK_ENTRY_BYTES, c * CHUNK_ENTRY_BYTES + CHUNK_ID_BYTES);
    chunkLengths[c] = chunks.readUInt32LE(c * CHUNK_ENTRY_BYTES + CHUNK_ID_BYTES);
  }
  const fingerprints = take(fingerprintBytes);
  const counts = take(2 * blockCount);
  const pieces: Piece[][] = [];
  for (let j = 0; j < blockCount; j++) {
    const count = counts.readUInt16LE(2 * j);
    if (!count) {
      pieces.push(NO_PIECES);
      continue;
    }
    const list: Piece[] = [];
    let end = 0;
    for (let k = count; k > 0; k--) {
      const raw = take(PIECE_BYTES);
      const p = { offset: raw.readUInt32LE(0), length: raw.readUInt32LE(4), chunk: raw.readUInt32LE(8), chunkOffset: raw.readUInt32LE(12) };
      if (p.length === 0 || p.offset < end || p.offset + p.length > blockSize) throw inconsistent(`block ${common.firstBlock + j} has overlapping or out-of-block pieces`);
      if (p.chunk >= chunkCount || p.chunkOffset + p.length > chunkLengths[p.chunk]!) throw inconsistent(`block ${common.firstBlock + j} refers beyond its chunks`);
      end = p.offset + p.length;
      list.push(p);
    }
    pieces.push(list);
  }
  if (at !== body.length) throw inconsistent('trailing bytes');
  return { version: 2, ...common, blockSize, subChunkSize, chunkIds, chunkLengths, fingerprints, pieces };
}

/** The chunk id at `index` of a version-2 manifest. */
export function manifestChunkId(m: ManifestV2, index: number): Buffer {
  return m.chunkIds.subarray(index * CHUNK_ID_BYTES, (index + 1) * CHUNK_ID_BYTES);
}

/**
 * Block `j` of the segment as pieces of chunks, whatever the version; ranges no piece covers are zeros.
 * `blockLength` is the block's length on the volume (shorter for the last block).
 */
export function blockPieces(m: SegmentManifest, j: number, blockLength: number): BlockPiece[] {
  if (m.version === 1) {
    const id = m.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES);
    return id.equals(ZERO_ID) ? [] : [{ offset: 0, length: blockLength, chunkId: id, chunkLength: blockLength, chunkOffset: 0 }];
  }
  return m.pieces[j]!.map((p) => {
    if (p.offset + p.length > blockLength) throw new Error(`manifest piece at ${p.offset} of block ${m.firstBlock + j} lies beyond the volume`);
    return { offset: p.offset, length: p.length, chunkId: manifestChunkId(m, p.chunk), chunkLength: m.chunkLengths[p.chunk]!, chunkOffset: p.chunkOffset };
  });
}

/** How a restore checks this segment's chunk ids: tree ids over leaves of this size, or (0) version-1 ids. */
export function idLeafBytes(m: SegmentManifest): number {
  return m.version === 1 ? 0 : m.subChunkSize;
}

export function emptyStats(): BackupStats {
  return {
    blocks: 0,
    zeroBlocks: 0,
    chunkCount: 0,
    reusedFromParent: 0,
    reusedSubChunks: 0,
    dedupHits: 0,
    newChunks: 0,
    newSubChunks: 0,
    storedBytes: 0,
    logicalBytes: 0,
    packsWritten: 0,
  };
}

export function addStats(into: BackupStats, s: BackupStats): BackupStats {
  for (const k of Object.keys(into) as Array<keyof BackupStats>) into[k] = (into[k] ?? 0) + (s[k] ?? 0);
  return into;
}

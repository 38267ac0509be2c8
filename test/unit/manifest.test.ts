// Segment manifests: version-2 encode/decode (pieces, chunk table, fingerprints), version-1 decode from the
// documented layout, refusal of unknown versions, sealing bound to (version, backup, segment), stats helpers.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CHUNK_ID_BYTES, ChunkIntegrityError, deriveDomainKeys, sealMetadata } from '../../lib/engine/chunk-codec.ts';
import {
  FINGERPRINT_BYTES,
  MANIFEST_VERSION,
  ManifestVersionError,
  ZERO_ID,
  addStats,
  blockPieces,
  decodeManifest,
  emptyStats,
  encodeManifest,
  idLeafBytes,
  manifestKey,
} from '../../lib/engine/manifest.ts';
import type { ManifestContent, Piece } from '../../lib/engine/manifest.ts';

const keys = deriveDomainKeys(randomBytes(32), 'd-man');
const BLOCK = 512 * 1024;
const SUB = 64 * 1024;
const PER_BLOCK = BLOCK / SUB;

const stats = { ...emptyStats(), blocks: 4, zeroBlocks: 1, chunkCount: 3, reusedFromParent: 1, reusedSubChunks: 6, newChunks: 2, newSubChunks: 1, storedBytes: 12345, logicalBytes: 99999, packsWritten: 1 };

/**
 * Four blocks: 0 and 1 pieces of one 1 MiB extent (chunk 0); 2 all zeros; 3 the extent's first block
 * with sub-chunk 1 replaced by chunk 1, sub-chunk 5 by chunk 2 (its last 100 bytes zeros) and sub-chunk
 * 7 zeros.
 */
function content(): ManifestContent {
  const chunkIds = randomBytes(3 * CHUNK_ID_BYTES);
  const fingerprints = randomBytes(4 * PER_BLOCK * FINGERPRINT_BYTES);
  fingerprints.fill(0, 2 * PER_BLOCK * FINGERPRINT_BYTES, 3 * PER_BLOCK * FINGERPRINT_BYTES);
  fingerprints.fill(0, (3 * PER_BLOCK + 7) * FINGERPRINT_BYTES, 4 * PER_BLOCK * FINGERPRINT_BYTES);
  const pieces: Piece[][] = [
    [{ offset: 0, length: BLOCK, chunk: 0, chunkOffset: 0 }],
    [{ offset: 0, length: BLOCK, chunk: 0, chunkOffset: BLOCK }],
    [],
    [
      { offset: 0, length: SUB, chunk: 0, chunkOffset: 0 },
      { offset: SUB, length: SUB, chunk: 1, chunkOffset: 0 },
      { offset: 2 * SUB, length: 3 * SUB, chunk: 0, chunkOffset: 2 * SUB },
      { offset: 5 * SUB, length: SUB - 100, chunk: 2, chunkOffset: 0 },
      { offset: 6 * SUB, length: SUB, chunk: 0, chunkOffset: 6 * SUB },
    ],
  ];
  return { firstBlock: 2048, blockCount: 4, stats, blockSize: BLOCK, subChunkSize: SUB, chunkIds, chunkLengths: Uint32Array.of(2 * BLOCK, SUB, SUB - 100), fingerprints, pieces };
}

/** A manifest object framed by hand as docs/format.md describes it: version byte, then the sealed payload. */
function framed(version: number, backupId: string, segment: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.of(version), sealMetadata(keys, `manifest:v${version}:${backupId}:${segment}`, payload)]);
}

function withJson(json: object, ...rest: Buffer[]): Buffer {
  const text = Buffer.from(JSON.stringify(json));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(text.length);
  return Buffer.concat([head, text, ...rest]);
}

/** The version-2 payload of `m`, laid out by hand from docs/format.md. */
function v2Payload(m: ManifestContent, jsonOver: object = {}, pieces: Piece[][] = m.pieces): Buffer {
  const counts = Buffer.alloc(2 * m.blockCount);
  pieces.forEach((list, j) => counts.writeUInt16LE(list.length, 2 * j));
  const raw = pieces.flat().map((p) => {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(p.offset, 0);
    b.writeUInt32LE(p.length, 4);
    b.writeUInt32LE(p.chunk, 8);
    b.writeUInt32LE(p.chunkOffset, 12);
    return b;
  });
  const chunks = Array.from(m.chunkLengths, (length, c) => {
    const b = Buffer.alloc(CHUNK_ID_BYTES + 4);
    m.chunkIds.copy(b, 0, c * CHUNK_ID_BYTES, (c + 1) * CHUNK_ID_BYTES);
    b.writeUInt32LE(length, CHUNK_ID_BYTES);
    return b;
  });
  const json = { firstBlock: m.firstBlock, blockCount: m.blockCount, blockSize: m.blockSize, subChunkSize: m.subChunkSize, chunkCount: m.chunkLengths.length, stats: m.stats, ...jsonOver };
  return withJson(json, ...chunks, m.fingerprints, counts, ...raw);
}

/** A version-1 manifest, framed by hand: one id per block. */
function v1Manifest(backupId: string, segment: number, ids: Buffer, v1Stats: object) {
  return framed(1, backupId, segment, withJson({ firstBlock: segment * 64, blockCount: ids.length / CHUNK_ID_BYTES, stats: v1Stats }, ids));
}

describe('manifests', () => {
  it('names segment objects with a zero-padded index under the backup prefix', () => {
    expect(manifestKey('manifests/p/b/', 0)).toBe('manifests/p/b/seg-000000');
    expect(manifestKey('manifests/p/b/', 123)).toBe('manifests/p/b/seg-000123');
  });

  it('writes version 2 and round-trips geometry, stats, chunk table (ids and lengths), fingerprints and pieces', () => {
    const m = content();
    const sealed = encodeManifest(keys, 'backup-1', 1, m);
    expect(MANIFEST_VERSION).toBe(2);
    expect(sealed[0]).toBe(2);
    const back = decodeManifest(keys, 'backup-1', 1, sealed);
    expect(back).toEqual({ version: 2, ...m });
  });

  it('resolves each block into pieces with chunk ids; uncovered ranges and pieceless blocks are zeros', () => {
    const m = content();
    const back = decodeManifest(keys, 'b', 0, encodeManifest(keys, 'b', 0, m));
    const id = (k: number) => m.chunkIds.subarray(k * CHUNK_ID_BYTES, (k + 1) * CHUNK_ID_BYTES);
    expect(blockPieces(back, 1, BLOCK)).toEqual([{ offset: 0, length: BLOCK, chunkId: id(0), chunkLength: 2 * BLOCK, chunkOffset: BLOCK }]);
    expect(blockPieces(back, 2, BLOCK)).toEqual([]);
    const last = blockPieces(back, 3, BLOCK);
    expect(last.map((p) => [p.offset, p.length, p.chunkOffset, p.chunkLength])).toEqual([
      [0, SUB, 0, 2 * BLOCK],
      [SUB, SUB, 0, SUB],
      [2 * SUB, 3 * SUB, 2 * SUB, 2 * BLOCK],
      [5 * SUB, SUB - 100, 0, SUB - 100],
      [6 * SUB, SUB, 6 * SUB, 2 * BLOCK],
    ]);
    expect(last[3]!.chunkId).toEqual(id(2));
    expect(last.reduce((n, p) => n + p.length, 0)).toBe(BLOCK - SUB - 100); // sub-chunk 7 and a tail are zeros
    expect(idLeafBytes(back)).toBe(SUB);
  });

  it('refuses a piece that lies beyond the block the volume has there (a short last block)', () => {
    const back = decodeManifest(keys, 'b', 0, encodeManifest(keys, 'b', 0, content()));
    expect(() => blockPieces(back, 0, BLOCK - 1)).toThrow(/beyond the volume/);
  });

  it('decodes a version-2 object framed by hand from the documented layout', () => {
    const m = content();
    expect(decodeManifest(keys, 'b', 2, framed(2, 'b', 2, v2Payload(m)))).toEqual({ version: 2, ...m });
  });

  it('compresses: a segment of zero blocks is far smaller than its fingerprints', () => {
    const blockCount = 2048;
    const m = { ...content(), blockCount, chunkIds: Buffer.alloc(0), chunkLengths: new Uint32Array(0), fingerprints: Buffer.alloc(blockCount * PER_BLOCK * FINGERPRINT_BYTES), pieces: Array.from({ length: blockCount }, () => []) };
    expect(encodeManifest(keys, 'b', 0, m).length).toBeLessThan(2048);
  });

  it.each([
    ['overlapping pieces', (m: ManifestContent) => v2Payload(m, {}, [[{ offset: 0, length: SUB, chunk: 0, chunkOffset: 0 }, { offset: SUB - 1, length: 2, chunk: 0, chunkOffset: 0 }], [], [], []]), /overlapping/],
    ['a piece past the block', (m: ManifestContent) => v2Payload(m, {}, [[{ offset: BLOCK - 10, length: 11, chunk: 0, chunkOffset: 0 }], [], [], []]), /out-of-block/],
    ['an empty piece', (m: ManifestContent) => v2Payload(m, {}, [[{ offset: 0, length: 0, chunk: 0, chunkOffset: 0 }], [], [], []]), /overlapping or out-of-block/],
    ['a chunk number past the table', (m: ManifestContent) => v2Payload(m, {}, [[{ offset: 0, length: SUB, chunk: 3, chunkOffset: 0 }], [], [], []]), /beyond its chunks/],
    ['a range past its chunk', (m: ManifestContent) => v2Payload(m, {}, [[{ offset: 0, length: SUB, chunk: 2, chunkOffset: 0 }], [], [], []]), /beyond its chunks/],
    ['a sub-chunk size that does not divide the block', (m: ManifestContent) => v2Payload(m, { subChunkSize: 3000 }), /bad geometry/],
    ['a truncated piece list', (m: ManifestContent) => v2Payload(m).subarray(0, -1), /truncated/],
    ['trailing bytes', (m: ManifestContent) => Buffer.concat([v2Payload(m), Buffer.alloc(1)]), /trailing/],
  ])('rejects an authentic version-2 payload with %s', (_what, payload, message) => {
    expect(() => decodeManifest(keys, 'b', 0, framed(2, 'b', 0, payload(content())))).toThrow(message);
  });

  it('decodes version 1 (one id per block) from the documented layout; each non-zero block is one chunk whole', () => {
    const ids = Buffer.concat([randomBytes(32), ZERO_ID, randomBytes(32)]);
    const v1Stats = { blocks: 3, zeroBlocks: 1, chunkCount: 2, reusedFromParent: 0, dedupHits: 0, newChunks: 2, storedBytes: 100, logicalBytes: BLOCK + 1000, packsWritten: 1 };
    const back = decodeManifest(keys, 'old', 5, v1Manifest('old', 5, ids, v1Stats));
    expect(back.version).toBe(1);
    expect(back.firstBlock).toBe(320);
    expect(back.stats).toEqual({ ...v1Stats, reusedSubChunks: 0, newSubChunks: 0 }); // fields version 1 did not have count 0
    expect(blockPieces(back, 0, BLOCK)).toEqual([{ offset: 0, length: BLOCK, chunkId: ids.subarray(0, 32), chunkLength: BLOCK, chunkOffset: 0 }]);
    expect(blockPieces(back, 1, BLOCK)).toEqual([]);
    expect(blockPieces(back, 2, 1000)).toEqual([{ offset: 0, length: 1000, chunkId: ids.subarray(64, 96), chunkLength: 1000, chunkOffset: 0 }]);
    expect(idLeafBytes(back)).toBe(0);
  });

  it('rejects an authentic version-1 payload whose id list does not match blockCount', () => {
    const payload = withJson({ firstBlock: 0, blockCount: 3, stats: emptyStats() }, Buffer.alloc(2 * CHUNK_ID_BYTES));
    expect(() => decodeManifest(keys, 'b', 0, framed(1, 'b', 0, payload))).toThrow(/inconsistent/);
  });

  it('does not decode under another backup id, another segment, or another domain key', () => {
    const sealed = encodeManifest(keys, 'backup-1', 1, content());
    expect(() => decodeManifest(keys, 'backup-2', 1, sealed)).toThrow(ChunkIntegrityError);
    expect(() => decodeManifest(keys, 'backup-1', 0, sealed)).toThrow(ChunkIntegrityError);
    expect(() => decodeManifest(keys, 'backup-1', 11, sealed)).toThrow(ChunkIntegrityError);
    expect(() => decodeManifest(deriveDomainKeys(randomBytes(32), 'd-man'), 'backup-1', 1, sealed)).toThrow(ChunkIntegrityError);
  });

  it('fails when any byte after the version is flipped, the flags byte included', () => {
    const m = { ...content(), blockCount: 1, fingerprints: randomBytes(PER_BLOCK * FINGERPRINT_BYTES), pieces: [[{ offset: 0, length: BLOCK, chunk: 0, chunkOffset: 0 }]] };
    const sealed = encodeManifest(keys, 'b', 3, m);
    for (let at = 1; at < sealed.length; at++) {
      const bad = Buffer.from(sealed);
      bad[at] = bad[at]! ^ 4;
      expect(() => decodeManifest(keys, 'b', 3, bad)).toThrow(ChunkIntegrityError);
    }
  });

  it.each([0, 3, 255])('refuses version %i, naming the manifest and the version it found', (version) => {
    const sealed = encodeManifest(keys, 'backup-9', 4, content());
    sealed[0] = version;
    let caught: unknown;
    try {
      decodeManifest(keys, 'backup-9', 4, sealed);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ManifestVersionError);
    expect((caught as Error).message).toBe(`manifest seg-000004 of backup backup-9 has format version ${version}; this OpenVBS reads only versions 1 and 2`);
    expect(caught).toMatchObject({ backupId: 'backup-9', segment: 4, version });
  });

  it('refuses a newer version even when its payload is sealed correctly for it', () => {
    expect(() => decodeManifest(keys, 'b', 0, framed(3, 'b', 0, v2Payload(content())))).toThrow(ManifestVersionError);
  });

  it('binds the version into the associated data: a manifest relabelled with the other version does not verify', () => {
    const v2 = encodeManifest(keys, 'b', 0, content());
    v2[0] = 1;
    expect(() => decodeManifest(keys, 'b', 0, v2)).toThrow(ChunkIntegrityError);
    const v1 = v1Manifest('b', 0, randomBytes(64), emptyStats());
    v1[0] = 2;
    expect(() => decodeManifest(keys, 'b', 0, v1)).toThrow(ChunkIntegrityError);
  });

  it('refuses an empty object as an integrity error', () => {
    expect(() => decodeManifest(keys, 'b', 0, Buffer.alloc(0))).toThrow(ChunkIntegrityError);
  });

  it('adds stats field by field, counting a field a version-1 manifest lacks as 0', () => {
    const a = { ...emptyStats(), blocks: 1, newChunks: 2, storedBytes: 3, newSubChunks: 1 };
    const b = { ...emptyStats(), blocks: 10, newChunks: 20, packsWritten: 4 };
    delete b.newSubChunks;
    const sum = addStats(a, b);
    expect(sum).toBe(a);
    expect(sum).toEqual({ ...emptyStats(), blocks: 11, newChunks: 22, storedBytes: 3, packsWritten: 4, newSubChunks: 1 });
    expect(Object.values(emptyStats()).every((v) => v === 0)).toBe(true);
  });
});

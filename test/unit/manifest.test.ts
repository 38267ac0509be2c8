// Segment manifests: sealed encode/decode bound to (backup, segment), and stats helpers.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CHUNK_ID_BYTES, ChunkIntegrityError, deriveDomainKeys, sealMetadata } from '../../lib/engine/chunk-codec.ts';
import { MANIFEST_VERSION, ManifestVersionError, ZERO_ID, addStats, decodeManifest, emptyStats, encodeManifest, manifestKey } from '../../lib/engine/manifest.ts';
import type { SegmentManifest } from '../../lib/engine/manifest.ts';

const keys = deriveDomainKeys(randomBytes(32), 'd-man');

function manifest(blockCount: number): SegmentManifest {
  const ids = Buffer.alloc(blockCount * CHUNK_ID_BYTES);
  for (let j = 0; j < blockCount; j++) if (j % 3 !== 1) randomBytes(CHUNK_ID_BYTES).copy(ids, j * CHUNK_ID_BYTES);
  const stats = { ...emptyStats(), blocks: blockCount, zeroBlocks: Math.floor((blockCount + 1) / 3), chunkCount: 7, newChunks: 5, dedupHits: 2, storedBytes: 12345, logicalBytes: 99999, packsWritten: 1 };
  return { firstBlock: 2048, blockCount, stats, ids };
}

/** A manifest object framed by hand as docs/format.md describes it: version byte, then the sealed payload. */
function framed(version: number, backupId: string, segment: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.of(version), sealMetadata(keys, `manifest:v${version}:${backupId}:${segment}`, payload)]);
}

describe('manifests', () => {
  it('names segment objects with a zero-padded index under the backup prefix', () => {
    expect(manifestKey('manifests/p/b/', 0)).toBe('manifests/p/b/seg-000000');
    expect(manifestKey('manifests/p/b/', 123)).toBe('manifests/p/b/seg-000123');
  });

  it('round-trips firstBlock, blockCount, stats and ids', () => {
    const m = manifest(100);
    const sealed = encodeManifest(keys, 'backup-1', 1, m);
    const back = decodeManifest(keys, 'backup-1', 1, sealed);
    expect(back.firstBlock).toBe(2048);
    expect(back.blockCount).toBe(100);
    expect(back.stats).toEqual(m.stats);
    expect(back.ids).toEqual(m.ids);
    expect(back.ids.subarray(CHUNK_ID_BYTES, 2 * CHUNK_ID_BYTES)).toEqual(ZERO_ID);
  });

  it('round-trips an empty segment', () => {
    const m = manifest(0);
    expect(decodeManifest(keys, 'b', 0, encodeManifest(keys, 'b', 0, m)).ids.length).toBe(0);
  });

  it('compresses: a manifest of mostly zero ids is far smaller than its ids', () => {
    const m = { ...manifest(2048), ids: Buffer.alloc(2048 * CHUNK_ID_BYTES) };
    expect(encodeManifest(keys, 'b', 0, m).length).toBeLessThan(2048);
  });

  it('does not decode under another backup id, another segment, or another domain key', () => {
    const sealed = encodeManifest(keys, 'backup-1', 1, manifest(10));
    expect(() => decodeManifest(keys, 'backup-2', 1, sealed)).toThrow(ChunkIntegrityError);
    expect(() => decodeManifest(keys, 'backup-1', 0, sealed)).toThrow(ChunkIntegrityError);
    expect(() => decodeManifest(keys, 'backup-1', 11, sealed)).toThrow(ChunkIntegrityError);
    expect(() => decodeManifest(deriveDomainKeys(randomBytes(32), 'd-man'), 'backup-1', 1, sealed)).toThrow(ChunkIntegrityError);
  });

  it('fails when any byte after the version is flipped, the flags byte included', () => {
    const sealed = encodeManifest(keys, 'b', 3, manifest(10));
    for (let at = 1; at < sealed.length; at++) {
      const bad = Buffer.from(sealed);
      bad[at] = bad[at]! ^ 4;
      expect(() => decodeManifest(keys, 'b', 3, bad)).toThrow(ChunkIntegrityError);
    }
  });

  it('rejects an authentic payload whose id list does not match blockCount', () => {
    const json = Buffer.from(JSON.stringify({ firstBlock: 0, blockCount: 3, stats: emptyStats() }));
    const payload = Buffer.alloc(4 + json.length + 2 * CHUNK_ID_BYTES);
    payload.writeUInt32LE(json.length, 0);
    json.copy(payload, 4);
    expect(() => decodeManifest(keys, 'b', 0, framed(MANIFEST_VERSION, 'b', 0, payload))).toThrow(/inconsistent/);
  });

  it('starts with the format version in clear, and decodes an object framed by hand from the documented layout', () => {
    const m = manifest(5);
    const sealed = encodeManifest(keys, 'b', 2, m);
    expect(MANIFEST_VERSION).toBe(1);
    expect(sealed[0]).toBe(MANIFEST_VERSION);
    expect(sealed[1]).toBe(1); // the sealed payload's flags: zstd

    const json = Buffer.from(JSON.stringify({ firstBlock: m.firstBlock, blockCount: m.blockCount, stats: m.stats }));
    const payload = Buffer.concat([Buffer.alloc(4), json, m.ids]);
    payload.writeUInt32LE(json.length, 0);
    const back = decodeManifest(keys, 'b', 2, framed(1, 'b', 2, payload));
    expect(back).toEqual({ firstBlock: m.firstBlock, blockCount: m.blockCount, stats: m.stats, ids: m.ids });
  });

  it.each([0, 2, 255])('refuses version %i, naming the manifest and the version it found', (version) => {
    const sealed = encodeManifest(keys, 'backup-9', 4, manifest(3));
    sealed[0] = version;
    let caught: unknown;
    try {
      decodeManifest(keys, 'backup-9', 4, sealed);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ManifestVersionError);
    expect((caught as Error).message).toBe(`manifest seg-000004 of backup backup-9 has format version ${version}; this OpenVBS reads only version 1`);
    expect(caught).toMatchObject({ backupId: 'backup-9', segment: 4, version });
  });

  it('refuses a newer version even when its payload is sealed correctly for it', () => {
    const payload = Buffer.alloc(4 + 2);
    payload.writeUInt32LE(2, 0);
    payload.write('{}', 4);
    expect(() => decodeManifest(keys, 'b', 0, framed(2, 'b', 0, payload))).toThrow(ManifestVersionError);
  });

  it('binds the version into the associated data: a manifest sealed for version 2 but labelled 1 does not verify', () => {
    const m = manifest(3);
    const json = Buffer.from(JSON.stringify({ firstBlock: m.firstBlock, blockCount: m.blockCount, stats: m.stats }));
    const payload = Buffer.concat([Buffer.alloc(4), json, m.ids]);
    payload.writeUInt32LE(json.length, 0);
    const sealedAsV2 = framed(2, 'b', 0, payload);
    sealedAsV2[0] = 1; // claims version 1, but its associated data named version 2
    expect(() => decodeManifest(keys, 'b', 0, sealedAsV2)).toThrow(ChunkIntegrityError);
  });

  it('refuses an empty object as an integrity error', () => {
    expect(() => decodeManifest(keys, 'b', 0, Buffer.alloc(0))).toThrow(ChunkIntegrityError);
  });

  it('adds stats field by field', () => {
    const a = { ...emptyStats(), blocks: 1, newChunks: 2, storedBytes: 3 };
    const b = { ...emptyStats(), blocks: 10, newChunks: 20, packsWritten: 4 };
    const sum = addStats(a, b);
    expect(sum).toBe(a);
    expect(sum).toEqual({ ...emptyStats(), blocks: 11, newChunks: 22, storedBytes: 3, packsWritten: 4 });
    expect(Object.values(emptyStats()).every((v) => v === 0)).toBe(true);
  });
});

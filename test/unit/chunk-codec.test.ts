// Per-chunk codec: keyed ids, zstd + AES-GCM sealing, integrity failures, zero detection.
import { randomBytes } from 'node:crypto';
import { zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_ID_BYTES,
  ChunkIntegrityError,
  SEAL_OVERHEAD,
  chunkId,
  contentId,
  deriveDomainKeys,
  isAllZero,
  leafHashes,
  openChunk,
  openMetadata,
  sealChunk,
  sealInto,
  sealMetadata,
  treeId,
} from '../../lib/engine/chunk-codec.ts';
import type { DomainKeys } from '../../lib/engine/chunk-codec.ts';
import { expectSameBytes } from './bytes.ts';

const keys = deriveDomainKeys(randomBytes(32), 'd-unit');
const otherKeys = deriveDomainKeys(randomBytes(32), 'd-unit');

function text(size: number): Buffer {
  const words = 'volume backup block server disk snapshot restore chunk pack index manifest 0 1 2 3 {"id": true\n'.split(' ');
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < size; i++) {
    const w = words[(i * 7 + (i >> 3)) % words.length]! + ' ';
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

function seal(k: DomainKeys, plaintext: Buffer, id = chunkId(k, plaintext)): { id: Buffer; sealed: Buffer } {
  const out = Buffer.alloc(plaintext.length + SEAL_OVERHEAD);
  const len = sealChunk(k, id, plaintext, out, 0);
  return { id, sealed: out.subarray(0, len) };
}

describe('chunk ids', () => {
  it('are 32-byte HMACs: stable under one key, different under another key or domain', () => {
    const data = text(64 * 1024);
    const id = chunkId(keys, data);
    expect(id.length).toBe(CHUNK_ID_BYTES);
    expect(chunkId(keys, Buffer.from(data))).toEqual(id);
    expect(chunkId(otherKeys, data)).not.toEqual(id);
    const dataKey = randomBytes(32);
    expect(chunkId(deriveDomainKeys(dataKey, 'd-a'), data)).not.toEqual(chunkId(deriveDomainKeys(dataKey, 'd-b'), data));
  });

  it('derive id and encryption keys that differ from each other and are deterministic', () => {
    const dataKey = randomBytes(32);
    const a = deriveDomainKeys(dataKey, 'd-x');
    const b = deriveDomainKeys(dataKey, 'd-x');
    expect(a.idKey).toEqual(b.idKey);
    expect(a.encKey).toEqual(b.encKey);
    expect(a.idKey).not.toEqual(a.encKey);
    expect(a.encKey.length).toBe(32);
  });

  it('change when a single byte changes', () => {
    const data = text(4096);
    const changed = Buffer.from(data);
    changed[2000] = changed[2000]! ^ 1;
    expect(chunkId(keys, changed)).not.toEqual(chunkId(keys, data));
  });
});

describe('tree ids (version 2)', () => {
  const LEAF = 64 * 1024;

  it('hash each leaf with the id key, the last one short, and mark all-zero leaves with 32 zero bytes', () => {
    const data = Buffer.concat([text(LEAF), Buffer.alloc(LEAF), text(1000)]);
    const leaves = leafHashes(keys, data, LEAF);
    expect(leaves.length).toBe(3 * CHUNK_ID_BYTES);
    expect(leaves.subarray(0, 32)).toEqual(chunkId(keys, data.subarray(0, LEAF)));
    expect(leaves.subarray(32, 64)).toEqual(Buffer.alloc(32));
    expect(leaves.subarray(64, 96)).toEqual(chunkId(keys, data.subarray(2 * LEAF)));
  });

  it('bind the leaf size, the length and every leaf, and differ from the version-1 id of the same bytes', () => {
    const data = text(2 * LEAF);
    const id = contentId(keys, data, LEAF);
    expect(id).toEqual(treeId(keys, leafHashes(keys, data, LEAF), LEAF, data.length));
    expect(contentId(keys, data, LEAF / 2)).not.toEqual(id);
    expect(treeId(keys, leafHashes(keys, data, LEAF), LEAF, data.length - 1)).not.toEqual(id);
    expect(contentId(keys, data, 0)).toEqual(chunkId(keys, data));
    expect(contentId(keys, data, 0)).not.toEqual(id);
    const changed = Buffer.from(data);
    changed[LEAF + 5] = changed[LEAF + 5]! ^ 1;
    expect(contentId(keys, changed, LEAF)).not.toEqual(id);
    expect(leafHashes(keys, changed, LEAF).subarray(0, 32)).toEqual(leafHashes(keys, data, LEAF).subarray(0, 32));
  });

  it('let a sub-chunk of one leaf be found from its leaf hash alone', () => {
    const data = text(LEAF);
    expect(treeId(keys, chunkId(keys, data), LEAF, LEAF)).toEqual(contentId(keys, data, LEAF));
  });

  it('are what a chunk opened with a leaf size is checked against, and only that', () => {
    const data = Buffer.concat([text(LEAF), Buffer.alloc(100)]);
    const id = contentId(keys, data, LEAF);
    const { sealed } = seal(keys, data, id);
    expectSameBytes(openChunk(keys, id, sealed, data.length, LEAF), data);
    expect(() => openChunk(keys, id, sealed, data.length)).toThrow(/does not match its chunk id/);
    expect(() => openChunk(keys, id, sealed, data.length, LEAF / 2)).toThrow(/does not match its chunk id/);
    const v1 = seal(keys, data);
    expect(() => openChunk(keys, v1.id, v1.sealed, data.length, LEAF)).toThrow(/does not match its chunk id/);
  });
});

describe('seal and open', () => {
  it('round-trips compressible text, stored compressed (flag set, smaller than the plaintext)', () => {
    const data = text(512 * 1024);
    const { id, sealed } = seal(keys, data);
    expect(sealed[0]! & 1).toBe(1);
    expect(sealed.length).toBeLessThan(data.length / 2);
    expectSameBytes(openChunk(keys, id, sealed), data);
  });

  it('round-trips random data, stored raw (flag clear, plaintext size + overhead)', () => {
    const data = randomBytes(512 * 1024);
    const { id, sealed } = seal(keys, data);
    expect(sealed[0]! & 1).toBe(0);
    expect(sealed.length).toBe(data.length + SEAL_OVERHEAD);
    expectSameBytes(openChunk(keys, id, sealed), data);
  });

  it('round-trips short and one-byte chunks', () => {
    for (const data of [Buffer.from([7]), text(1000), randomBytes(13)]) {
      const { id, sealed } = seal(keys, data);
      expectSameBytes(openChunk(keys, id, sealed), data);
    }
  });

  it('writes at an offset inside a larger buffer and returns the sealed length', () => {
    const data = text(8192);
    const id = chunkId(keys, data);
    const out = Buffer.alloc(100 + data.length + SEAL_OVERHEAD, 0xee);
    const len = sealChunk(keys, id, data, out, 100);
    expect(out.subarray(0, 100).every((b) => b === 0xee)).toBe(true);
    expectSameBytes(openChunk(keys, id, out.subarray(100, 100 + len)), data);
  });

  it('uses a fresh nonce each time: sealing the same chunk twice gives different bytes', () => {
    const data = text(4096);
    const a = seal(keys, data);
    const b = seal(keys, data);
    expect(a.sealed.subarray(1, 13)).not.toEqual(b.sealed.subarray(1, 13));
    expect(a.sealed).not.toEqual(b.sealed);
  });

  it.each([
    ['compressed', () => text(2048)],
    ['raw', () => randomBytes(600)],
  ])('fails with ChunkIntegrityError when any byte of a %s sealed chunk is flipped', (_kind, make) => {
    const { id, sealed } = seal(keys, make());
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] = bad[i]! ^ 0x01;
      expect(() => openChunk(keys, id, bad), `byte ${i} of ${sealed.length}`).toThrow(ChunkIntegrityError);
    }
  });

  it('fails when the sealed chunk is truncated or empty', () => {
    const { id, sealed } = seal(keys, text(2048));
    expect(() => openChunk(keys, id, sealed.subarray(0, sealed.length - 1))).toThrow(ChunkIntegrityError);
    expect(() => openChunk(keys, id, sealed.subarray(0, SEAL_OVERHEAD - 1))).toThrow(ChunkIntegrityError);
    expect(() => openChunk(keys, id, Buffer.alloc(0))).toThrow(ChunkIntegrityError);
  });

  it('fails when a chunk is opened under another chunk id', () => {
    const a = seal(keys, text(4096));
    const b = seal(keys, randomBytes(4096));
    expect(() => openChunk(keys, b.id, a.sealed)).toThrow(ChunkIntegrityError);
    expect(() => openChunk(keys, a.id, b.sealed)).toThrow(ChunkIntegrityError);
    const flipped = Buffer.from(a.id);
    flipped[31] = flipped[31]! ^ 0x80;
    expect(() => openChunk(keys, flipped, a.sealed)).toThrow(ChunkIntegrityError);
  });

  it('fails under another domain key', () => {
    const { id, sealed } = seal(keys, text(4096));
    expect(() => openChunk(otherKeys, id, sealed)).toThrow(ChunkIntegrityError);
  });

  it('fails when the content does not match its id even though it decrypts (sealed under a wrong id)', () => {
    const data = text(4096);
    const wrongId = chunkId(keys, randomBytes(64));
    const { sealed } = seal(keys, data, wrongId);
    expect(() => openChunk(keys, wrongId, sealed)).toThrow(/does not match its chunk id/);
  });
});

describe('bounded decompression', () => {
  /** A correctly keyed chunk (flags: zstd) whose payload decompresses to `plain`: what a forger with the key could write. */
  function sealedZstd(plain: Buffer) {
    const id = chunkId(keys, plain);
    const payload = zstdCompressSync(plain);
    const out = Buffer.alloc(payload.length + SEAL_OVERHEAD);
    const len = sealInto(keys.encKey, 1, Buffer.concat([id, Buffer.of(1)]), payload, out, 0);
    return { id, sealed: out.subarray(0, len), payloadBytes: payload.length };
  }

  it('refuses a payload that decompresses beyond maxPlainBytes, and opens it when allowed', () => {
    const bomb = Buffer.alloc(8 * 1024 * 1024); // 8 MiB of zeros: a few hundred bytes compressed
    const { id, sealed, payloadBytes } = sealedZstd(bomb);
    expect(payloadBytes).toBeLessThan(4096);
    expect(() => openChunk(keys, id, sealed, 512 * 1024)).toThrow(ChunkIntegrityError);
    expect(() => openChunk(keys, id, sealed, 512 * 1024)).toThrow(/at most a chunk/);
    expect(() => openChunk(keys, id, sealed)).toThrow(/at most a chunk/); // the default bound is 4 MiB
    expect(() => openChunk(keys, id, sealed, bomb.length - 1)).toThrow(/at most a chunk/);
    expectSameBytes(openChunk(keys, id, sealed, bomb.length), bomb);
  });

  it('refuses a correctly keyed chunk whose flags this reader does not know, naming them', () => {
    const plain = text(4096);
    const id = chunkId(keys, plain);
    const out = Buffer.alloc(plain.length + SEAL_OVERHEAD);
    const len = sealInto(keys.encKey, 0x02, Buffer.concat([id, Buffer.of(0x02)]), plain, out, 0);
    expect(() => openChunk(keys, id, out.subarray(0, len))).toThrow(/unknown flags 0x02/);
  });

  it('opens a chunk of exactly maxPlainBytes and refuses it one byte lower', () => {
    const data = text(64 * 1024);
    const { id, sealed } = seal(keys, data);
    expect(sealed[0]! & 1).toBe(1);
    expectSameBytes(openChunk(keys, id, sealed, data.length), data);
    expect(() => openChunk(keys, id, sealed, data.length - 1)).toThrow(/at most a chunk/);
  });
});

describe('metadata sealing', () => {
  it('round-trips and is bound to its context label', () => {
    const data = Buffer.from(JSON.stringify({ hello: 'world', n: [1, 2, 3] }));
    const sealed = sealMetadata(keys, 'ctx:a', data);
    expect(openMetadata(keys, 'ctx:a', sealed)).toEqual(data);
    expect(() => openMetadata(keys, 'ctx:b', sealed)).toThrow(ChunkIntegrityError);
    expect(() => openMetadata(otherKeys, 'ctx:a', sealed)).toThrow(ChunkIntegrityError);
  });

  it('fails when any byte is flipped, the flags byte included', () => {
    const sealed = sealMetadata(keys, 'ctx:a', Buffer.from('metadata '.repeat(40)));
    for (let i = 0; i < sealed.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const bad = Buffer.from(sealed);
        bad[i] = bad[i]! ^ mask;
        expect(() => openMetadata(keys, 'ctx:a', bad), `byte ${i} ^ ${mask}`).toThrow(ChunkIntegrityError);
      }
    }
  });
});

describe('isAllZero', () => {
  it('is true for zeros and the empty buffer, false for any non-zero byte (aligned)', () => {
    expect(isAllZero(Buffer.alloc(0))).toBe(true);
    const buf = Buffer.alloc(4096);
    expect(buf.byteOffset % 8).toBe(0);
    expect(isAllZero(buf)).toBe(true);
    for (const at of [0, 7, 8, 2047, 4095]) {
      buf[at] = 1;
      expect(isAllZero(buf), `non-zero at ${at}`).toBe(false);
      buf[at] = 0;
    }
    buf[4095] = 0x80;
    expect(isAllZero(buf)).toBe(false);
  });

  it('checks the tail of an aligned view whose length is not a multiple of 8', () => {
    const buf = Buffer.alloc(1003);
    expect(isAllZero(buf)).toBe(true);
    buf[1002] = 9;
    expect(isAllZero(buf)).toBe(false);
    buf[1002] = 0;
    buf[999] = 9; // inside the last partial word
    expect(isAllZero(buf)).toBe(false);
  });

  it('handles unaligned views, including non-zero bytes just outside the view', () => {
    const backing = new Uint8Array(new ArrayBuffer(8200));
    for (const start of [1, 3, 5, 7, 9]) {
      const view = backing.subarray(start, start + 8000 + start);
      expect(view.byteOffset % 8).not.toBe(0);
      backing.fill(0);
      expect(isAllZero(view)).toBe(true);
      backing[start - 1] = 1; // before the view
      backing[start + view.length] = 1; // after the view
      expect(isAllZero(view)).toBe(true);
      view[0] = 1;
      expect(isAllZero(view)).toBe(false);
      view[0] = 0;
      view[view.length - 1] = 1;
      expect(isAllZero(view)).toBe(false);
      view[view.length - 1] = 0;
      view[4001] = 2;
      expect(isAllZero(view)).toBe(false);
    }
  });

  it('handles an aligned view that starts inside a larger buffer', () => {
    const backing = Buffer.alloc(4096);
    const view = backing.subarray(64, 64 + 1024);
    expect(view.byteOffset % 8).toBe(0);
    backing[63] = 1;
    backing[64 + 1024] = 1;
    expect(isAllZero(view)).toBe(true);
    view[512] = 1;
    expect(isAllZero(view)).toBe(false);
  });
});

// zstd straight into a caller's buffer: exact fits, frames that hold more than the room, damage, trailing
// bytes, and a context that keeps working after a failure.
import { randomBytes } from 'node:crypto';
import { zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompressesInPlace, zstdDecompressInto, ZstdIntoError } from '../../lib/engine/zstd-into.ts';
import { expectSameBytes } from './bytes.ts';

const plain = Buffer.concat([Buffer.from('block '.repeat(50_000)), randomBytes(70_000), Buffer.alloc(100_000)]);
const frame = zstdCompressSync(plain);

describe('zstdDecompressInto', () => {
  it('drives the native context on this Node (the fallback is the slow path)', () => {
    expect(decompressesInPlace()).toBe(true);
  });

  it('writes the frame at the start of the buffer and returns its length, with room to spare or none', () => {
    for (const room of [plain.length + 4096, plain.length]) {
      const out = Buffer.alloc(room, 0xee);
      expect(zstdDecompressInto(frame, out)).toBe(plain.length);
      expectSameBytes(out.subarray(0, plain.length), plain);
      expect(out.subarray(plain.length).every((b) => b === 0xee)).toBe(true);
    }
  });

  it('refuses a frame that holds even one byte more than the room, and works again afterwards', () => {
    expect(() => zstdDecompressInto(frame, Buffer.alloc(plain.length - 1))).toThrow(ZstdIntoError);
    expect(() => zstdDecompressInto(frame, Buffer.alloc(1000))).toThrow(/more than 1000 bytes/);
    const out = Buffer.alloc(plain.length);
    expect(zstdDecompressInto(frame, out)).toBe(plain.length);
    expectSameBytes(out, plain);
  });

  it('refuses a damaged frame and bytes after the frame; the next call gets a working context', () => {
    const damaged = Buffer.from(frame);
    damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
    damaged[20]! ^= 0xff;
    const out = Buffer.alloc(plain.length * 2);
    expect(() => zstdDecompressInto(damaged, out)).toThrow(ZstdIntoError);
    expect(() => zstdDecompressInto(Buffer.concat([frame, Buffer.from('tail')]), out)).toThrow(ZstdIntoError);
    expect(zstdDecompressInto(frame, out)).toBe(plain.length);
    expectSameBytes(out.subarray(0, plain.length), plain);
  });

  it('a truncated frame yields fewer bytes than it holds (the caller checks length and id)', () => {
    const out = Buffer.alloc(plain.length);
    expect(zstdDecompressInto(frame.subarray(0, frame.length - 10), out)).toBeLessThan(plain.length);
  });
});

// copyBytes: the same bytes as TypedArray.set, for every pairing of shared and ordinary memory, at offsets
// that are and are not congruent, across its 64 KiB step; and nothing outside the target range changes.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { allocatePageAlignedShared, copyBytes } from '../../lib/util/aligned-memory.ts';

const SIZE = 300 * 1024;

function memory(shared: boolean): Buffer {
  return shared ? Buffer.from(allocatePageAlignedShared(SIZE), 0, SIZE) : Buffer.alloc(SIZE);
}

describe('copyBytes', () => {
  for (const srcShared of [false, true]) {
    for (const dstShared of [false, true]) {
      it(`copies ${srcShared ? 'shared' : 'ordinary'} into ${dstShared ? 'shared' : 'ordinary'} memory at any offsets`, () => {
        const src = memory(srcShared);
        randomBytes(SIZE).copy(src);
        for (const [from, at, length] of [
          [0, 0, 100_000],
          [3, 0, 140_001], // not congruent, more than two steps
          [0, 5, 65_536],
          [13, 13, 70_000], // congruent
          [7, 1, 1],
          [1, 2, 0],
        ] as const) {
          const dst = memory(dstShared).fill(0xee);
          const expected = Buffer.alloc(SIZE, 0xee);
          expected.set(src.subarray(from, from + length), at);
          copyBytes(src.subarray(from, from + length), dst, at);
          expect(Buffer.compare(dst, expected), `from ${from} at ${at} length ${length}`).toBe(0);
        }
      });
    }
  }
});

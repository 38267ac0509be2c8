// How a restore groups chunks into ranged GETs and their plaintexts into volume writes.
import { describe, expect, it } from 'vitest';
import { planFetches, planRanges, writeRuns } from '../../lib/engine/restore.ts';
import type { ChunkRef } from '../../lib/engine/restore.ts';

const KiB = 1024;
const BS = 512 * KiB;

function chunk(pack: string, offset: number, length: number, targets: number[], plain = BS): ChunkRef {
  return { id: Buffer.alloc(32, targets[0]! / BS), location: { pack, offset, length }, length: plain, targets };
}

/** Chunks stored back to back in one pack, each restoring block i of the volume. */
function packOf(pack: string, sealedLengths: number[], firstBlock = 0): ChunkRef[] {
  let at = 0;
  return sealedLengths.map((len, i) => {
    const c = chunk(pack, at, len, [(firstBlock + i) * BS]);
    at += len;
    return c;
  });
}

describe('planRanges', () => {
  it('merges neighbours of a pack into one range, and no more than the limit of sealed bytes', () => {
    const chunks = packOf('p', Array<number>(10).fill(BS + 29));
    const ranges = planRanges(chunks, 4 * BS + 4 * 29);
    expect(ranges.map((r) => r.chunks.length)).toEqual([4, 4, 2]);
    for (const r of ranges) expect(r.end - r.start).toBeLessThanOrEqual(4 * BS + 4 * 29);
    expect(ranges.flatMap((r) => r.chunks)).toEqual(chunks);
  });

  it('limits the plaintext a range restores, however small its chunks compressed', () => {
    // 1,000 blocks that compressed to 100 bytes each: one 100 KB GET would restore 500 MiB.
    const chunks = packOf('p', Array<number>(1000).fill(100));
    const ranges = planRanges(chunks, 4 * 1024 * KiB);
    expect(ranges).toHaveLength(125);
    for (const r of ranges) {
      expect(r.plainBytes).toBe(8 * BS);
      expect(r.chunks.reduce((n, c) => n + c.length, 0)).toBe(r.plainBytes);
    }
  });

  it('splits at gaps wider than 256 KiB and keeps packs apart', () => {
    const a = [chunk('a', 0, 1000, [0]), chunk('a', 1000 + 256 * KiB, 1000, [BS]), chunk('a', 2000 + 512 * KiB + 1, 1000, [2 * BS])];
    const b = [chunk('b', 1000, 1000, [3 * BS])];
    const ranges = planRanges([...a, ...b], 16 * 1024 * KiB);
    expect(ranges.map((r) => [r.pack, r.chunks.length])).toEqual([['a', 2], ['a', 1], ['b', 1]]);
    expect(ranges[0]).toMatchObject({ start: 0, end: 2000 + 256 * KiB });
  });

  it('orders ranges by where they land on the volume, not by pack', () => {
    const late = packOf('late', [1000, 1000], 10);
    const early = packOf('early', [1000, 1000], 0);
    const ranges = planRanges([...late, ...early], 16 * 1024 * KiB);
    expect(ranges.map((r) => r.pack)).toEqual(['early', 'late']);
  });
});

describe('planFetches', () => {
  it('reads neighbouring ranges of a pack with one GET of at most the limit', () => {
    // 12 chunks of 1 MiB sealed each: ranges of 2 MiB hold two; GETs of up to 5 MiB hold two ranges.
    const ranges = planRanges(packOf('p', Array<number>(12).fill(1024 * KiB)), 2 * 1024 * KiB);
    expect(ranges).toHaveLength(6);
    const fetches = planFetches(ranges, 5 * 1024 * KiB);
    expect(fetches.map((f) => f.ranges.length)).toEqual([2, 2, 2]);
    for (const f of fetches) {
      expect(f.end - f.start).toBeLessThanOrEqual(5 * 1024 * KiB);
      expect(f.start).toBe(f.ranges[0]!.start);
      expect(f.end).toBe(f.ranges.at(-1)!.end);
    }
    expect(fetches.flatMap((f) => f.ranges)).toEqual(ranges);
  });

  it('joins neighbours of a pack whatever order they are written in, and keeps packs and wide gaps apart', () => {
    const r = (pack: string, start: number, end: number) => ({ pack, start, end, plainBytes: 0, chunks: [], leafBytes: 0 });
    // As planRanges orders them (by volume offset): a pack's second half was sealed before its first.
    const ranges = [r('a', 1000, 2000), r('b', 0, 100), r('a', 0, 1000), r('a', 2000 + 256 * KiB + 1, 3000 + 256 * KiB + 1), r('c', 0, 10)];
    const fetches = planFetches(ranges, 16 * 1024 * KiB);
    expect(fetches.map((f) => [f.pack, f.start, f.end, f.ranges.length])).toEqual([
      ['a', 0, 2000, 2],
      ['b', 0, 100, 1],
      ['a', 2000 + 256 * KiB + 1, 3000 + 256 * KiB + 1, 1],
      ['c', 0, 10, 1],
    ]);
    expect(fetches.flatMap((f) => f.ranges)).toHaveLength(ranges.length);
  });

  it('with a limit of one range, reads each range with its own GET', () => {
    const ranges = planRanges(packOf('p', Array<number>(8).fill(1024 * KiB)), 2 * 1024 * KiB);
    expect(planFetches(ranges, 2 * 1024 * KiB)).toHaveLength(ranges.length);
  });
});

describe('writeRuns', () => {
  const offsets = (chunks: ChunkRef[]) => {
    let at = 0;
    return chunks.map((c) => {
      const o = at;
      at += c.length;
      return o;
    });
  };

  it('writes chunks that follow each other in the slot and on the volume as one run', () => {
    const chunks = packOf('p', [100, 100, 100], 4);
    expect(writeRuns(chunks, offsets(chunks))).toEqual([{ from: 0, length: 3 * BS, target: 4 * BS }]);
  });

  it('starts a new run where the volume skips blocks (zero blocks, chunks stored elsewhere)', () => {
    const chunks = [chunk('p', 0, 100, [0]), chunk('p', 100, 100, [BS]), chunk('p', 200, 100, [5 * BS])];
    expect(writeRuns(chunks, offsets(chunks))).toEqual([
      { from: 0, length: 2 * BS, target: 0 },
      { from: 2 * BS, length: BS, target: 5 * BS },
    ]);
  });

  it('writes every other place of a deduplicated chunk on its own, continuing the run where one fits', () => {
    const chunks = [chunk('p', 0, 100, [0]), chunk('p', 100, 100, [BS, 7 * BS, 9 * BS]), chunk('p', 200, 100, [2 * BS])];
    const runs = writeRuns(chunks, offsets(chunks));
    expect(runs).toEqual([
      { from: 0, length: 3 * BS, target: 0 },
      { from: BS, length: BS, target: 7 * BS },
      { from: BS, length: BS, target: 9 * BS },
    ]);
  });

  it('continues a run with whichever place of a chunk follows it', () => {
    // The second chunk restores blocks 3 and 9; in the pack it follows block 8's chunk.
    const chunks = [chunk('p', 0, 100, [8 * BS]), chunk('p', 100, 100, [3 * BS, 9 * BS])];
    expect(writeRuns(chunks, offsets(chunks))).toEqual([
      { from: 0, length: 2 * BS, target: 8 * BS },
      { from: BS, length: BS, target: 3 * BS },
    ]);
  });

  it('writes a short last block with its own length', () => {
    const chunks = [chunk('p', 0, 100, [0]), chunk('p', 100, 100, [BS], 1000)];
    expect(writeRuns(chunks, offsets(chunks))).toEqual([{ from: 0, length: BS + 1000, target: 0 }]);
  });
});

// The native helper behind the file provider's holes (native/seekmap.c through lib/volumes/sparse.ts), on
// real files: where data lies, merged small holes, punching, what it cannot tell, one process per file.
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import { SparseHelperError, seekmapHoleMap } from '../../lib/volumes/sparse.ts';
import { allocatedBytes, requireSeekmap } from '../support/sparse-image.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Helper processes this process started that are still running. */
function runningHelpers(): number {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'seekmap serve']).toString().trim().split('\n').filter(Boolean).length;
  } catch {
    return 0; // pgrep exits 1 when nothing matches
  }
}

describe('seekmap helper', () => {
  let dir: string;
  let helper: string;

  beforeAll(async () => {
    helper = requireSeekmap();
    dir = await mkdtemp(join(tmpdir(), 'openvbs-seekmap-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A 64 MiB sparse file with data at the given (offset, length) places. */
  async function sparseFile(name: string, pieces: Array<[number, number]>): Promise<string> {
    const path = join(dir, name);
    const fh = await open(path, 'w');
    await fh.truncate(64 * MiB);
    for (const [at, len] of pieces) await fh.write(Buffer.alloc(len, 0xab), 0, len, at);
    await fh.close();
    return path;
  }

  async function withFile<T>(path: string, flags: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    const fh = await open(path, flags);
    try {
      return await fn(fh);
    } finally {
      await fh.close();
    }
  }

  it('lists the data ranges of a window, and only those', async () => {
    const holes = seekmapHoleMap(helper, 200);
    const path = await sparseFile('a.img', [[1 * MiB, 64 * KiB], [8 * MiB, 4 * KiB], [40 * MiB, 3 * MiB]]);
    await withFile(path, 'r', async (fh) => {
      expect(await holes.dataRanges(fh, 0, 64 * MiB, 4 * KiB)).toEqual([
        { offset: 1 * MiB, length: 64 * KiB },
        { offset: 8 * MiB, length: 4 * KiB },
        { offset: 40 * MiB, length: 3 * MiB },
      ]);
      // clipped to the window
      expect(await holes.dataRanges(fh, 41 * MiB, 1 * MiB, 4 * KiB)).toEqual([{ offset: 41 * MiB, length: 1 * MiB }]);
      expect(await holes.dataRanges(fh, 2 * MiB, 6 * MiB, 4 * KiB)).toEqual([]);
      // beyond the end of the file there is nothing
      expect(await holes.dataRanges(fh, 64 * MiB, 1 * MiB, 4 * KiB)).toEqual([]);
    });
  });

  it('counts holes shorter than the minimum as data', async () => {
    const holes = seekmapHoleMap(helper, 200);
    const path = await sparseFile('b.img', [[0, 4 * KiB], [12 * KiB, 4 * KiB], [1 * MiB, 4 * KiB]]);
    await withFile(path, 'r', async (fh) => {
      expect(await holes.dataRanges(fh, 0, 64 * MiB, 64 * KiB)).toEqual([
        { offset: 0, length: 16 * KiB },
        { offset: 1 * MiB, length: 4 * KiB },
      ]);
    });
  });

  it('answers thousands of ranges whole, and merges them when the holes are short', async () => {
    const holes = seekmapHoleMap(helper, 200);
    const path = join(dir, 'fragmented.img');
    const fh = await open(path, 'w');
    await fh.truncate(400 * MiB);
    const page = Buffer.alloc(4 * KiB, 1);
    for (let i = 0; i < 5000; i++) await fh.write(page, 0, page.length, i * 64 * KiB);
    try {
      const fine = await holes.dataRanges(fh, 0, 400 * MiB, 4 * KiB);
      expect(fine!.length).toBe(5000);
      expect(fine![4999]).toEqual({ offset: 4999 * 64 * KiB, length: 4 * KiB });
      expect(await holes.dataRanges(fh, 0, 400 * MiB, 64 * KiB)).toEqual([{ offset: 0, length: 4999 * 64 * KiB + 4 * KiB }]);
    } finally {
      await fh.close();
    }
  });

  it('punches holes that read as zeros and give the space back', async () => {
    const holes = seekmapHoleMap(helper, 200);
    const path = await sparseFile('c.img', [[0, 4 * MiB]]);
    const before = await allocatedBytes(path);
    await withFile(path, 'r+', async (fh) => {
      expect(await holes.punch(fh, [{ offset: 1 * MiB, length: 2 * MiB }])).toBe(true);
      expect(await holes.dataRanges(fh, 0, 64 * MiB, 4 * KiB)).toEqual([
        { offset: 0, length: 1 * MiB },
        { offset: 3 * MiB, length: 1 * MiB },
      ]);
    });
    const data = await readFile(path);
    expect(data.subarray(1 * MiB, 3 * MiB).every((b) => b === 0)).toBe(true);
    expect(data[1 * MiB - 1]).toBe(0xab);
    expect(data[3 * MiB]).toBe(0xab);
    expect(data.length).toBe(64 * MiB);
    expect(await allocatedBytes(path)).toBeLessThanOrEqual(before - 2 * MiB);
  });

  it('says it cannot tell, nor punch, for what is not a regular file', async () => {
    const holes = seekmapHoleMap(helper, 200);
    await withFile('/dev/zero', 'r', async (fh) => {
      expect(await holes.dataRanges(fh, 0, 1 * MiB, 4 * KiB)).toBeUndefined();
    });
    await withFile('/dev/null', 'r+', async (fh) => {
      expect(await holes.punch(fh, [{ offset: 0, length: 4 * KiB }])).toBe(false);
    });
  });

  it('serves every descriptor of one file from one process, which ends when idle', async () => {
    for (let i = 0; i < 50 && runningHelpers() > 0; i++) await new Promise((r) => setTimeout(r, 100)); // the other tests' helpers
    expect(runningHelpers()).toBe(0);
    const holes = seekmapHoleMap(helper, 300);
    const path = await sparseFile('d.img', [[2 * MiB, 4 * KiB]]);
    const other = await sparseFile('e.img', [[3 * MiB, 4 * KiB]]);
    await withFile(path, 'r', async (a) =>
      withFile(path, 'r', async (b) =>
        withFile(other, 'r', async (c) => {
          const answers = await Promise.all([holes.dataRanges(a, 0, 64 * MiB, 4 * KiB), holes.dataRanges(b, 0, 64 * MiB, 4 * KiB), holes.dataRanges(c, 0, 64 * MiB, 4 * KiB)]);
          expect(answers).toEqual([[{ offset: 2 * MiB, length: 4 * KiB }], [{ offset: 2 * MiB, length: 4 * KiB }], [{ offset: 3 * MiB, length: 4 * KiB }]]);
          expect(runningHelpers()).toBe(2);
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(runningHelpers()).toBe(0);
    // the next request starts a fresh helper
    await withFile(path, 'r', async (a) => expect(await holes.dataRanges(a, 0, 64 * MiB, 4 * KiB)).toEqual([{ offset: 2 * MiB, length: 4 * KiB }]));
  });

  it('fails clearly when the helper cannot run', async () => {
    const holes = seekmapHoleMap(join(dir, 'no-such-helper'), 200);
    const path = await sparseFile('f.img', []);
    await withFile(path, 'r', async (fh) => {
      await expect(holes.dataRanges(fh, 0, MiB, 4 * KiB)).rejects.toThrow(SparseHelperError);
    });
  });

  it('gives the file provider written ranges only when it has a helper', async () => {
    const path = await sparseFile('g.img', [[5 * MiB, 8 * KiB]]);
    const withHelper = new FileVolumeProvider(async () => ({ path }), { holes: seekmapHoleMap(helper, 200) });
    const without = new FileVolumeProvider(async () => ({ path }), { holes: null });
    const r1 = await withHelper.openReader('p', 'v');
    const r2 = await without.openReader('p', 'v');
    try {
      expect(await r1.writtenRanges!(0, 64 * MiB)).toEqual([{ offset: 5 * MiB, length: 8 * KiB }]);
      expect(r2.writtenRanges).toBeUndefined();
    } finally {
      await r1.close();
      await r2.close();
    }
    // A file shorter than its registered size: the missing end is not a hole (reading it must fail).
    const shrunk = new FileVolumeProvider(async () => ({ path, sizeBytes: 80 * MiB }), { holes: seekmapHoleMap(helper, 200) });
    const r3 = await shrunk.openReader('p', 'v');
    try {
      expect(await r3.writtenRanges!(0, 80 * MiB)).toEqual([{ offset: 5 * MiB, length: 8 * KiB }, { offset: 64 * MiB, length: 16 * MiB }]);
      expect(await r3.writtenRanges!(70 * MiB, 1 * MiB)).toEqual([{ offset: 70 * MiB, length: 1 * MiB }]);
    } finally {
      await r3.close();
    }
  });
});

// A restore's whole-block writes from the chunk pool's page-aligned slots bypass the page cache (O_DIRECT);
// everything else goes through it. Both kinds, mixed in one file, on a disk filesystem and on tmpfs, must
// leave exactly the bytes written, for a new image and for a registered file.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import { DIRECT_IO_ALIGNMENT, allocatePageAlignedShared, isMemoryAligned } from '../../lib/util/aligned-memory.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import { openNoFollow } from '../../lib/volumes/file-identity.ts';

const KiB = 1024;
const SIZE = 4 * 1024 * KiB;
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('page-aligned shared memory', () => {
  it('tells aligned views of its buffers from the rest', () => {
    const buf = Buffer.from(allocatePageAlignedShared(100 * KiB));
    expect(buf.length).toBeGreaterThanOrEqual(100 * KiB);
    expect(isMemoryAligned(buf)).toBe(true);
    expect(isMemoryAligned(buf.subarray(DIRECT_IO_ALIGNMENT))).toBe(true);
    expect(isMemoryAligned(buf.subarray(512))).toBe(false);
    expect(isMemoryAligned(Buffer.alloc(DIRECT_IO_ALIGNMENT))).toBe(false); // ordinary memory: unknown, so not
  });

  it('is what the chunk pool hands out', async () => {
    const pool = new ChunkPool({ workers: 0 });
    const slot = pool.acquire(3 * 1024 * KiB);
    expect(isMemoryAligned(slot.buf)).toBe(true);
    pool.release(slot);
    await pool.close();
  });
});

for (const [where, base] of [
  ['a disk filesystem', tmpdir()],
  ['tmpfs', '/dev/shm'],
] as const) {
  describe(`file writer on ${where}`, () => {
    const expected = Buffer.alloc(SIZE);
    /** Aligned writes from slot memory, and the kinds that cannot go direct, interleaved. */
    async function writeMixed(writer: Awaited<ReturnType<FileVolumeProvider['openWriter']>>) {
      const slot = Buffer.from(allocatePageAlignedShared(1024 * KiB));
      const writes: Array<[Buffer, number]> = [
        [slot.subarray(0, 512 * KiB), 0], // direct: aligned memory, offset and length
        [slot.subarray(512 * KiB, 1024 * KiB), 1024 * KiB], // direct
        [Buffer.from(randomBytes(512 * KiB)), 512 * KiB], // ordinary memory: through the page cache
        [slot.subarray(4096, 4096 + 3000), 2048 * KiB + 100], // unaligned offset and length
        [slot.subarray(8192, 8192 + 64 * KiB), 2048 * KiB], // direct, over a page the previous write touched
        [Buffer.from(randomBytes(10_000)), SIZE - 10_000], // short tail
      ];
      randomBytes(slot.length).copy(slot);
      for (const [data, offset] of writes) {
        await writer.write(data, offset);
        data.copy(expected, offset);
      }
      await writer.flush();
      await writer.close();
    }

    it('leaves exactly the bytes written in a new image', async () => {
      const dir = await mkdtemp(join(base, 'openvbs-direct-'));
      dirs.push(dir);
      const path = join(dir, 'new.img');
      expected.fill(0);
      await writeMixed(await new FileVolumeProvider(async () => ({ path })).openWriter('p', 'v', SIZE));
      expect((await readFile(path)).equals(expected)).toBe(true);
    });

    it('leaves exactly the bytes written in a registered file that held other data', async () => {
      const dir = await mkdtemp(join(base, 'openvbs-direct-'));
      dirs.push(dir);
      const path = join(dir, 'registered.img');
      const before = randomBytes(SIZE);
      await writeFile(path, before);
      before.copy(expected);
      const { fh, identity } = await openNoFollow(path, 0);
      await fh.close();
      await writeMixed(await new FileVolumeProvider(async () => ({ path, sizeBytes: SIZE, fileIdentity: identity })).openWriter('p', 'v', SIZE));
      expect((await readFile(path)).equals(expected)).toBe(true);
    });
  });
}

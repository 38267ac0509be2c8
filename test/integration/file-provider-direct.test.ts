// A restore's whole-block writes, and a backup's whole-block reads, into and from the chunk pool's
// page-aligned slots bypass the page cache (O_DIRECT); everything else goes through it. Both kinds, mixed
// in one file, on a disk filesystem and on tmpfs, must read and leave exactly the right bytes, for a new
// image and for a registered file. So must the embedded store's object files (a pack body from a slot: its
// aligned part direct, its tail through the page cache).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import { DIRECT_IO_ALIGNMENT, allocatePageAlignedShared, isMemoryAligned } from '../../lib/util/aligned-memory.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import { openNoFollow } from '../../lib/volumes/file-identity.ts';
import { writeTempFile } from '../../lib/embedded/durable-file.ts';

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

    it('reads whole blocks into slot memory and anything else alike, up to a file end off the 4 KiB grid', async () => {
      const dir = await mkdtemp(join(base, 'openvbs-direct-'));
      dirs.push(dir);
      const path = join(dir, 'source.img');
      const data = randomBytes(SIZE - 1000); // the last page is partial
      await writeFile(path, data);
      const reader = await new FileVolumeProvider(async () => ({ path })).openReader('p', 'v');
      const slot = Buffer.from(allocatePageAlignedShared(1024 * KiB));
      expect(await reader.read(slot.subarray(0, 512 * KiB), 512 * KiB)).toBe(512 * KiB); // direct
      expect(slot.subarray(0, 512 * KiB).equals(data.subarray(512 * KiB, 1024 * KiB))).toBe(true);
      const ordinary = Buffer.alloc(5000);
      expect(await reader.read(ordinary, 12_345)).toBe(5000);
      expect(ordinary.equals(data.subarray(12_345, 17_345))).toBe(true);
      // The file's last 1 MiB, asked whole into slot memory: 1000 bytes short, the partial page included.
      const tail = slot.subarray(0, 1024 * KiB);
      expect(await reader.read(tail, SIZE - 1024 * KiB)).toBe(1024 * KiB - 1000);
      expect(tail.subarray(0, 1024 * KiB - 1000).equals(data.subarray(SIZE - 1024 * KiB))).toBe(true);
      await reader.close();
    });

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

  describe(`object files on ${where}`, () => {
    it('hold exactly the bytes of a slot-backed body with a short tail, and of ordinary memory', async () => {
      const dir = await mkdtemp(join(base, 'openvbs-direct-'));
      dirs.push(dir);
      const slot = Buffer.from(allocatePageAlignedShared(1024 * KiB));
      randomBytes(slot.length).copy(slot);
      for (const body of [slot.subarray(0, 3 * DIRECT_IO_ALIGNMENT + 123), slot.subarray(0, 2 * DIRECT_IO_ALIGNMENT), slot.subarray(0, 100), slot.subarray(512, 70_000), randomBytes(50_000)]) {
        const path = await writeTempFile(dir, 'obj-', body);
        expect((await readFile(path)).equals(body), `${body.length} bytes`).toBe(true);
      }
    });
  });
}

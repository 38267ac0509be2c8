// Transfers past the page cache (O_DIRECT) where memory, file offset and length allow, for the file volumes
// (a restore's writes, a backup's reads) and the embedded store's object writes. Whole blocks and pack
// bodies sit in the chunk pool's page-aligned slots; whatever is not aligned (a short last block, pieces of
// changed blocks, an object's tail) goes through the page cache, as does everything on a filesystem that
// refuses O_DIRECT. Measured on this machine's disk: 1.3 GB written and made durable in 0.75 s that way,
// 3.7 s through the page cache and fdatasync.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { DIRECT_IO_ALIGNMENT, isMemoryAligned } from './aligned-memory.ts';

/** A second descriptor on an open file, with O_DIRECT: the file itself reopened through /proc/self/fd, never its path again. */
export class DirectIo {
  private direct: FileHandle | undefined;

  private constructor(direct: FileHandle | undefined) {
    this.direct = direct;
  }

  static async open(fh: FileHandle, access: number): Promise<DirectIo> {
    if (process.platform !== 'linux' || constants.O_DIRECT === undefined) return new DirectIo(undefined);
    return new DirectIo(await open(`/proc/self/fd/${fh.fd}`, access | constants.O_DIRECT).catch(() => undefined));
  }

  /**
   * Runs `transfer` on the direct descriptor when `data` (memory and length) and `offset` are aligned;
   * undefined when they are not, or when the kernel refuses after all (a device with larger blocks: then
   * the page cache from now on), so the caller does it through the page cache.
   */
  async attempt<T>(data: Uint8Array, offset: number, transfer: (direct: FileHandle) => Promise<T>): Promise<T | undefined> {
    const direct = this.direct;
    if (!direct || offset % DIRECT_IO_ALIGNMENT !== 0 || data.length % DIRECT_IO_ALIGNMENT !== 0 || !isMemoryAligned(data)) return undefined;
    try {
      return await transfer(direct);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      this.direct = undefined;
      await direct.close();
      return undefined;
    }
  }

  async close(): Promise<void> {
    await this.direct?.close();
  }
}

export async function writeFully(fh: FileHandle, data: Uint8Array, offset: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
    done += bytesWritten;
  }
}

/**
 * Writes `data` at the start of the empty file `fh` (opened for writing): its aligned part past the page
 * cache when its memory is page-aligned, the rest through it. The caller still syncs the file.
 */
export async function writeNewFile(fh: FileHandle, data: Uint8Array): Promise<void> {
  const aligned = data.length - (data.length % DIRECT_IO_ALIGNMENT);
  if (aligned > 0 && isMemoryAligned(data)) {
    const direct = await DirectIo.open(fh, constants.O_WRONLY);
    try {
      const head = data.subarray(0, aligned);
      if (await direct.attempt(head, 0, (d) => writeFully(d, head, 0).then(() => true))) {
        await writeFully(fh, data.subarray(aligned), aligned);
        return;
      }
    } finally {
      await direct.close();
    }
  }
  await writeFully(fh, data, 0);
}

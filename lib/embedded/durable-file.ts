// Crash-safe file writes for the embedded adapters: data is fsynced before its name appears, and the
// folder is fsynced after, so a crash leaves the old file, the new one, or a stray temporary file.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeNewFile } from '../util/direct-io.ts';

export const FILE_MODE = 0o600;
export const FOLDER_MODE = 0o700;

/** fsync a folder, making the names created, renamed or linked in it durable. */
export async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates `folder` and any missing parents (mode 0700), each made durable in its own parent. */
export async function makeFolder(folder: string): Promise<void> {
  const first = await mkdir(folder, { recursive: true, mode: FOLDER_MODE });
  if (!first) return;
  for (let f = folder; ; f = dirname(f)) {
    await syncFolder(dirname(f));
    if (f === first) break;
  }
}

/** Writes `data` to a new file `<folder>/<prefix><random>` (mode 0600) and fsyncs it; returns its path. */
export async function writeTempFile(folder: string, prefix: string, data: Uint8Array | string): Promise<string> {
  const temp = join(folder, `${prefix}${randomBytes(8).toString('hex')}`);
  const file = await open(temp, 'wx', FILE_MODE);
  try {
    if (typeof data === 'string') await file.writeFile(data);
    else await writeNewFile(file, data); // a pack body from the chunk pool goes past the page cache
    await file.sync();
  } catch (err) {
    await file.close();
    await unlink(temp).catch(() => {});
    throw err;
  }
  await file.close();
  return temp;
}

/** Replaces `path` with `data` atomically and durably (temp file, fsync, rename, fsync the folder). */
export async function replaceFile(path: string, data: Uint8Array | string, tempPrefix = '.tmp-'): Promise<void> {
  const folder = dirname(path);
  const temp = await writeTempFile(folder, tempPrefix, data);
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  await syncFolder(folder);
}

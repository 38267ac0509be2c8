// Opening a volume's file only if it is still the file registered for the volume.
//
// A registered path can be swapped afterwards for a symlink, another file or nothing. Every open therefore
// refuses a symlink in the last component (O_NOFOLLOW), never creates a file, and compares the device and
// inode of what it opened (fstat on the open descriptor, so there is no window between check and use) with
// those recorded at registration. O_NONBLOCK keeps a FIFO planted at the path from blocking the open; it
// changes nothing for regular files and block devices. A deleted file's inode number may be given to a new
// file, so what opens must also still be a regular file or block device; a new regular file that got the
// old number can only have been made by someone who could write the folder (within the operator's roots).
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/** Device and inode numbers as decimal strings (exact: inode numbers may exceed 2^53). */
export interface FileIdentity {
  dev: string;
  ino: string;
}

export type FileIdentityProblem = 'vanished' | 'symlink' | 'replaced';

export class FileIdentityError extends Error {
  override name = 'FileIdentityError';
  readonly problem: FileIdentityProblem;

  constructor(problem: FileIdentityProblem, message: string) {
    super(message);
    this.problem = problem;
  }
}

/** Opens `path` (never following a final symlink, never creating) and returns the handle with its identity and stat. */
export async function openNoFollow(path: string, flags: number) {
  if (flags & constants.O_CREAT) throw new Error('openNoFollow never creates files');
  let fh: FileHandle;
  try {
    fh = await open(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new FileIdentityError('symlink', `${path} is a symbolic link`);
    if (code === 'ENOENT') throw new FileIdentityError('vanished', `${path} does not exist`);
    throw err;
  }
  try {
    const stats = await fh.stat({ bigint: true });
    return { fh, stats, identity: { dev: stats.dev.toString(), ino: stats.ino.toString() } satisfies FileIdentity };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Opens `path` with `flags` (O_RDONLY, O_RDWR...; O_CREAT is refused) if it is still the file `expected`
 * names. Throws FileIdentityError when it is a symlink, gone, or another file; other errors (EACCES,
 * EROFS...) as the system reports them.
 */
export async function openVerified(path: string, flags: number, expected: FileIdentity): Promise<FileHandle> {
  const { fh, stats, identity } = await openNoFollow(path, flags);
  const sameKind = stats.isFile() || stats.isBlockDevice();
  if (!sameKind || identity.dev !== expected.dev || identity.ino !== expected.ino) {
    await fh.close();
    throw new FileIdentityError('replaced', `${path} is no longer the file registered for the volume`);
  }
  return fh;
}

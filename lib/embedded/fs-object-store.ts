// ObjectStore on the local filesystem: object `a/b/c` is the file `<root>/a/b/c`.
// A put writes a temporary file in the target's folder, fsyncs it, renames it over the target and fsyncs
// the folder, so a reader (or a restart after a crash) sees the old object, the new one or nothing.
import { link, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { ObjectNotFoundError } from '../engine/ports.ts';
import type { ObjectStore } from '../engine/ports.ts';
import { makeFolder, syncFolder, writeTempFile } from './durable-file.ts';

/** Temporary files start with this; no object key may have a segment that does, so none is ever listed or read. */
const TEMP_MARK = '.openvbs-tmp-';

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** The codes that mean "no object at this key": the file, or a folder on its path, is missing or not what it should be. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

/** Key order as S3 lists it: by UTF-8 bytes. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function checkSegments(what: string, value: string, segments: string[]): void {
  for (const s of segments) {
    if (s.includes('\0')) throw new Error(`invalid ${what} ${JSON.stringify(value)}: NUL is not allowed`);
    if (s === '' || s === '.' || s === '..') throw new Error(`invalid ${what} ${JSON.stringify(value)}: empty, "." or ".." segments are not allowed`);
    if (s.startsWith(TEMP_MARK)) throw new Error(`invalid ${what} ${JSON.stringify(value)}: segments starting with ${TEMP_MARK} are reserved`);
  }
}

export class FsObjectStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const target = this.pathOf(key);
    const temp = await this.writeTemp(key, target, body);
    try {
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw this.clash(key, err);
    }
    await syncFolder(dirname(target));
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    const target = this.pathOf(key);
    const temp = await this.writeTemp(key, target, body);
    try {
      // link() creates the name only if it is free: the atomic create-if-absent rename cannot give.
      await link(temp, target);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw this.clash(key, err);
      if ((await stat(target)).isDirectory()) throw this.clash(key, err);
      return false;
    } finally {
      await unlink(temp).catch(() => {});
    }
    await syncFolder(dirname(target));
    return true;
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if (ABSENT.has(errorCode(err)!)) throw new ObjectNotFoundError(key);
      throw err;
    }
  }

  async getRange(key: string, start: number, length: number, into?: Buffer): Promise<Buffer> {
    if (into && into.length < length) throw new RangeError(`buffer of ${into.length} bytes is too small for ${length} bytes of ${key}`);
    const path = this.pathOf(key);
    let file;
    try {
      file = await open(path, 'r');
    } catch (err) {
      if (ABSENT.has(errorCode(err)!)) throw new ObjectNotFoundError(key);
      throw err;
    }
    try {
      const out = into ?? Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await file.read(out, got, length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got !== length) throw new Error(`short read of ${key}: wanted ${length} bytes at ${start}, got ${got}`);
      return out.subarray(0, length);
    } catch (err) {
      if (errorCode(err) === 'EISDIR') throw new ObjectNotFoundError(key);
      throw err;
    } finally {
      await file.close();
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key))).isFile();
    } catch (err) {
      if (ABSENT.has(errorCode(err)!)) return false;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    // Only the folder the prefix ends in can hold matches: walk it, keeping the names that start with the
    // prefix's last (possibly partial) segment, and everything below those.
    const cut = prefix.lastIndexOf('/') + 1;
    const folder = prefix.slice(0, cut);
    if (folder) checkSegments('prefix', prefix, folder.slice(0, -1).split('/'));
    yield* this.walk(folder, prefix.slice(cut));
  }

  async delete(keys: string[]): Promise<void> {
    // Not fsynced: an object whose deletion a crash undoes is garbage a later sweep removes again.
    // Empty folders stay: removing one could race with a put that has just created it.
    for (const key of keys) {
      try {
        await unlink(this.pathOf(key));
      } catch (err) {
        if (!ABSENT.has(errorCode(err)!)) throw err;
      }
    }
  }

  /** The file of `key`; refuses keys that are not a plain relative path below the root. */
  private pathOf(key: string): string {
    checkSegments('object key', key, key.split('/'));
    const path = join(this.root, ...key.split('/'));
    const rel = relative(this.root, path);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw new Error(`invalid object key ${JSON.stringify(key)}: outside the store`);
    return path;
  }

  /** Writes `body` to a fresh temporary file beside `target` and makes it durable; returns its path. */
  private async writeTemp(key: string, target: string, body: Uint8Array): Promise<string> {
    const folder = dirname(target);
    try {
      await makeFolder(folder);
    } catch (err) {
      throw this.clash(key, err);
    }
    return writeTempFile(folder, TEMP_MARK, body);
  }

  /** A key that needs a folder where an object is, or an object where a folder is: S3 can hold both, files cannot. */
  private clash(key: string, err: unknown): unknown {
    const code = errorCode(err);
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') {
      return new Error(`cannot store ${key}: it clashes with an existing object or folder (a filesystem store cannot hold both "a/b" and "a/b/c")`, {
        cause: err,
      });
    }
    return err;
  }

  private async *walk(folder: string, startsWith: string): AsyncGenerator<{ key: string; size: number }> {
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.root, folder), { withFileTypes: true });
    } catch (err) {
      if (ABSENT.has(errorCode(err)!)) return;
      throw err;
    }
    // A folder's keys all start with "<name>/", so sorting folders by that keeps the whole walk in key order.
    const named: Array<{ name: string; isFolder: boolean; order: string }> = [];
    for (const e of entries) {
      if (!e.name.startsWith(startsWith) || e.name.startsWith(TEMP_MARK)) continue;
      const isFolder = e.isDirectory();
      if (isFolder || e.isFile()) named.push({ name: e.name, isFolder, order: isFolder ? `${e.name}/` : e.name });
    }
    named.sort((a, b) => byteOrder(a.order, b.order));
    for (const { name, isFolder } of named) {
      const key = folder + name;
      if (isFolder) {
        yield* this.walk(`${key}/`, '');
        continue;
      }
      const size = await stat(join(this.root, key)).then(
        (s) => s.size,
        (err: unknown) => {
          if (ABSENT.has(errorCode(err)!)) return undefined; // deleted since the folder was read
          throw err;
        },
      );
      if (size !== undefined) yield { key, size };
    }
  }
}

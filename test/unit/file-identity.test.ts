// Opening a volume's file only while it is the registered file: symlinks, swapped files, vanished files and
// FIFOs planted at the path are refused; the registered file opens for reading and writing.
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { link, mkdtemp, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileIdentityError, openNoFollow, openVerified } from '../../lib/volumes/file-identity.ts';
import type { FileIdentity } from '../../lib/volumes/file-identity.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'openvbs-file-identity-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function registered(name: string, content = 'image'): Promise<{ path: string; identity: FileIdentity }> {
  const path = join(dir, name);
  await writeFile(path, content);
  const { fh, identity } = await openNoFollow(path, constants.O_RDONLY);
  await fh.close();
  return { path, identity };
}

async function refusal(p: Promise<unknown>): Promise<FileIdentityError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FileIdentityError);
  return err as FileIdentityError;
}

describe('openNoFollow', () => {
  it('reports the device and inode the system gives the file', async () => {
    const { path, identity } = await registered('plain.img');
    const st = await stat(path, { bigint: true });
    expect(identity).toEqual({ dev: st.dev.toString(), ino: st.ino.toString() });
  });

  it('never creates a file', async () => {
    await expect(openNoFollow(join(dir, 'new.img'), constants.O_RDWR | constants.O_CREAT)).rejects.toThrow(/never creates/);
    await expect(stat(join(dir, 'new.img'))).rejects.toThrow(/ENOENT/);
  });
});

describe('openVerified', () => {
  it('opens the registered file for reading and writing', async () => {
    const { path, identity } = await registered('ok.img', 'abcd');
    const fh = await openVerified(path, constants.O_RDWR, identity);
    try {
      await fh.write(Buffer.from('XY'), 0, 2, 1);
    } finally {
      await fh.close();
    }
    expect(await readFile(path, 'utf8')).toBe('aXYd');
  });

  it('refuses a symlink even to the registered file itself (O_NOFOLLOW)', async () => {
    const { path, identity } = await registered('linked.img');
    // A hard link keeps the inode alive under another name; the symlink at the path points to it.
    const keep = join(dir, 'linked-keep.img');
    await link(path, keep);
    await unlink(path);
    await symlink(keep, path);
    expect((await stat(path, { bigint: true })).ino.toString()).toBe(identity.ino);
    const err = await refusal(openVerified(path, constants.O_RDONLY, identity));
    expect(err.problem).toBe('symlink');
  });

  it('refuses another file put in its place', async () => {
    const { path, identity } = await registered('swapped.img', 'mine');
    const other = join(dir, 'other-project.img');
    await writeFile(other, 'theirs');
    await rename(other, path);
    const err = await refusal(openVerified(path, constants.O_RDWR, identity));
    expect(err.problem).toBe('replaced');
    expect(await readFile(path, 'utf8')).toBe('theirs');
  });

  it('refuses a vanished file and creates nothing in its place', async () => {
    const { path, identity } = await registered('vanished.img');
    await unlink(path);
    const err = await refusal(openVerified(path, constants.O_RDWR, identity));
    expect(err.problem).toBe('vanished');
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
    await expect(openVerified(path, constants.O_RDWR | constants.O_CREAT, identity)).rejects.toThrow(/never creates/);
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a FIFO planted at the path without blocking on it', async () => {
    const { path, identity } = await registered('fifo.img');
    await unlink(path);
    execFileSync('mkfifo', [path]);
    const err = await refusal(openVerified(path, constants.O_RDONLY, identity));
    expect(err.problem).toBe('replaced');
  });
});

// The file provider opens a registered volume only while its path still leads to the registered file: no
// symlink is followed, a file swapped in since is refused, and a vanished one is not created anew.
import { mkdtemp, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import type { FileVolume } from '../../lib/volumes/file-provider.ts';
import { FileIdentityError, openNoFollow } from '../../lib/volumes/file-identity.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'openvbs-identity-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function registered(name: string): Promise<FileVolume> {
  const path = join(dir, name);
  await writeFile(path, Buffer.alloc(8192, 7));
  const { fh, identity } = await openNoFollow(path, 0);
  await fh.close();
  return { path, sizeBytes: 8192, fileIdentity: identity };
}

const providerFor = (vol: FileVolume) => new FileVolumeProvider(async () => vol);

describe('file provider with a registered identity', () => {
  it('reads and writes the registered file', async () => {
    const vol = await registered('ok.img');
    const reader = await providerFor(vol).openReader('p', 'v');
    const buf = Buffer.alloc(8192);
    expect(await reader.read(buf, 0)).toBe(8192);
    expect(buf[0]).toBe(7);
    await reader.close();
    const writer = await providerFor(vol).openWriter('p', 'v', 8192);
    await writer.write(Buffer.alloc(4096, 9), 0);
    await writer.flush();
    await writer.close();
  });

  it('refuses a file swapped in after registration, for reading and for a restore', async () => {
    const vol = await registered('swapped.img');
    await rename(vol.path, join(dir, 'original.img'));
    await writeFile(vol.path, Buffer.alloc(8192, 1)); // another file at the same path
    await expect(providerFor(vol).openReader('p', 'v')).rejects.toBeInstanceOf(FileIdentityError);
    await expect(providerFor(vol).openWriter('p', 'v', 8192)).rejects.toThrow(/no longer the file registered/);
  });

  it('never follows a symlink put where the file was', async () => {
    const vol = await registered('linked.img');
    const other = join(dir, 'someone-elses.img');
    await writeFile(other, Buffer.alloc(8192, 3));
    await rm(vol.path);
    await symlink(other, vol.path);
    const err = await providerFor(vol).openReader('p', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileIdentityError);
    expect((err as FileIdentityError).problem).toBe('symlink');
    await expect(providerFor(vol).openWriter('p', 'v', 8192)).rejects.toBeInstanceOf(FileIdentityError);
    expect((await stat(other)).size).toBe(8192);
  });

  it('does not create a file where a registered one vanished', async () => {
    const vol = await registered('vanished.img');
    await rm(vol.path);
    const err = await providerFor(vol).openWriter('p', 'v', 8192).catch((e: unknown) => e);
    expect((err as FileIdentityError).problem).toBe('vanished');
    await expect(stat(vol.path)).rejects.toThrow(/ENOENT/);
  });
});

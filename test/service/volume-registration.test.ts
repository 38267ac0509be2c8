// Registering existing images and block devices by path: only under the operator's volume roots (real
// paths, no symlink escapes), block devices only when allowed, each path once across all projects, the
// file's device and inode recorded, and errors that tell nothing about what lies outside the roots.
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import { mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceError } from '../../lib/service/errors.ts';
import { VolumeInventory, pathRegistrationFromEnv } from '../../lib/volumes/inventory.ts';
import type { PathRegistrationSettings } from '../../lib/volumes/inventory.ts';
import { createServiceEnv, expectServiceError as expectError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;
/** Folders inside the two roots, and one outside both. */
let rootA: string;
let rootB: string;
let outside: string;
let inventory: VolumeInventory;

const inventoryWith = (pathRegistration: PathRegistrationSettings) => new VolumeInventory({ volumes: env.stores.volumes, keys: env.keys, dataDir: env.dataDir, pathRegistration });

beforeAll(async () => {
  env = await createServiceEnv();
  rootA = join(env.dir, 'root-a');
  rootB = join(env.dir, 'root-b');
  outside = join(env.dir, 'elsewhere');
  for (const dir of [rootA, rootB, outside]) await mkdir(dir, { recursive: true });
  inventory = inventoryWith({ volumeRoots: [rootA, join(env.dir, 'not-created-yet'), rootB], allowBlockDevices: false });
});
afterAll(async () => env?.close());

async function file(path: string, bytes = 4096): Promise<string> {
  await writeFile(path, Buffer.alloc(bytes, 1));
  return path;
}

describe('registering under the volume roots', () => {
  it('registers a file inside a root with its real path, device and inode, and keeps the file on delete', async () => {
    const p = projectId();
    const path = await file(join(rootA, 'disk.img'));
    const vol = await inventory.register(p, { name: 'existing', path });
    const st = await stat(path, { bigint: true });
    expect(vol).toMatchObject({ sizeBytes: 4096, managed: false, path, status: 'available', fileIdentity: { dev: st.dev.toString(), ino: st.ino.toString() } });
    expect((await inventory.get(p, vol.volumeId)).fileIdentity).toEqual(vol.fileIdentity);
    await inventory.delete(p, vol.volumeId);
    expect((await stat(path)).size).toBe(4096);
  });

  it('follows symlinks that stay inside the roots, recording where they lead', async () => {
    const target = await file(join(rootB, 'target.img'));
    const link = join(rootA, 'to-b.img');
    await symlink(target, link);
    const vol = await inventory.register(projectId(), { name: 'linked', path: link });
    expect(vol.path).toBe(target);
  });

  it('registers a path at most once across all projects, until its volume is deleted', async () => {
    const [p, q] = [projectId(), projectId()];
    const path = await file(join(rootA, 'shared.img'));
    const first = await inventory.register(p, { name: 'first', path });
    await expectError(inventory.register(p, { name: 'again', path }), 409, 'OpenVBS.1103');
    await expectError(inventory.register(q, { name: 'theirs', path }), 409, 'OpenVBS.1103');
    // through a symlink or a roundabout spelling it is the same path
    const link = join(rootB, 'shared-link.img');
    await symlink(path, link);
    await expectError(inventory.register(q, { name: 'via-link', path: link }), 409, 'OpenVBS.1103');
    await expectError(inventory.register(q, { name: 'dots', path: join(rootB, '..', 'root-a', '.', 'shared.img') }), 409, 'OpenVBS.1103');
    expect(await inventory.list(q)).toEqual([]);
    await inventory.delete(p, first.volumeId);
    expect((await inventory.register(q, { name: 'now-theirs', path })).path).toBe(path);
  });

  it('refuses paths that are relative, missing, directories, empty or in the managed area', async () => {
    const p = projectId();
    const empty = join(rootA, 'empty.img');
    await writeFile(empty, '');
    await mkdir(join(rootA, 'a-dir'), { recursive: true });
    // a root that holds the managed area: its images stay out of reach
    const wide = inventoryWith({ volumeRoots: [env.dir], allowBlockDevices: false });
    const managed = await env.services.volumes.create(projectId(), { name: 'someone-elses', sizeBytes: 4096 });
    const cases: Array<[VolumeInventory, string, RegExp]> = [
      [inventory, 'relative.img', /must be absolute/],
      [inventory, join(rootA, 'missing.img'), /does not exist/],
      [inventory, join(rootA, 'no-dir', 'missing.img'), /does not exist/],
      [inventory, join(rootA, 'a-dir'), /neither a regular file nor a block device/],
      [inventory, empty, /is empty/],
      [wide, managed.path, /managed volume folder/],
      [wide, join(env.dataDir, 'volumes', '..', 'volumes', managed.projectId, `${managed.volumeId}.img`), /managed volume folder/],
    ];
    for (const [inv, path, message] of cases) {
      const err = await expectError(inv.register(p, { name: 'bad', path }), 400, 'OpenVBS.1101');
      expect(err.message, path).toMatch(message);
    }
    const fifo = join(rootA, 'pipe.img');
    execFileSync('mkfifo', [fifo]);
    expect((await expectError(inventory.register(p, { name: 'fifo', path: fifo }), 400, 'OpenVBS.1101')).message).toMatch(/neither/);
    expect(await inventory.list(p)).toEqual([]);
  });
});

describe('what lies outside the roots', () => {
  it('refuses every path outside the roots with one message, whether it exists, how big it is, or where a symlink leads', async () => {
    const p = projectId();
    const big = await file(join(outside, 'big.img'), 65536);
    await mkdir(join(outside, 'dir'), { recursive: true });
    await symlink(big, join(rootA, 'escape.img'));
    await symlink(join(outside, 'missing.img'), join(rootA, 'dangling.img'));
    await symlink(outside, join(rootA, 'escape-dir'));
    await symlink(join(outside, 'no-such-dir'), join(rootA, 'dangling-dir'));
    const paths = [
      big,
      join(outside, 'missing.img'),
      join(outside, 'dir'),
      join(outside, 'no-such-dir', 'x.img'),
      '/etc/passwd',
      '/proc/self/environ',
      '/dev/null',
      '/',
      join(rootA, '..', 'elsewhere', 'big.img'),
      join(rootA, 'escape.img'),
      join(rootA, 'dangling.img'),
      join(rootA, 'escape-dir', 'big.img'),
      join(rootA, 'escape-dir', 'missing.img'),
      join(rootA, 'dangling-dir', 'x.img'),
    ];
    const messages = new Set<string>();
    for (const path of paths) {
      const err: ServiceError = await expectError(inventory.register(p, { name: 'probe', path }), 400, 'OpenVBS.1101');
      expect(err.message).toContain(path);
      messages.add(err.message.replace(path, '<path>'));
    }
    expect([...messages]).toEqual(['path <path> is not inside a folder volumes may be registered from (OPENVBS_VOLUME_ROOTS)']);
    expect(await inventory.list(p)).toEqual([]);
  });

  it('registers nothing by path without roots, or where path registration is off', async () => {
    const p = projectId();
    const path = await file(join(rootA, 'no-roots.img'));
    const none = inventoryWith({ volumeRoots: [], allowBlockDevices: true });
    expect((await expectError(none.register(p, { name: 'x', path }), 403, 'OpenVBS.1102')).message).toMatch(/OPENVBS_VOLUME_ROOTS/);
    // the same answer for a path that is not there
    expect((await expectError(none.register(p, { name: 'x', path: '/nowhere/x.img' }), 403, 'OpenVBS.1102')).message).toMatch(/OPENVBS_VOLUME_ROOTS/);
    const off = new VolumeInventory({ volumes: env.stores.volumes, keys: env.keys, dataDir: env.dataDir, allowPathRegistration: false, pathRegistration: { volumeRoots: [rootA], allowBlockDevices: true } });
    await expectError(off.register(p, { name: 'x', path }), 403, 'OpenVBS.1102');
    // managed images need no roots
    expect((await none.create(p, { name: 'managed', sizeBytes: 4096 })).managed).toBe(true);
  });
});

describe('block devices', () => {
  /** A block device node on this machine (the folder it is in becomes a root). */
  function someBlockDevice(): string {
    const name = readdirSync('/dev').find((n) => lstatSync(join('/dev', n)).isBlockDevice());
    if (name) return join('/dev', name);
    throw new Error('this test needs a block device node in /dev');
  }

  it('refuses block devices unless the operator allows them', async () => {
    const device = someBlockDevice();
    const refusing = inventoryWith({ volumeRoots: ['/dev'], allowBlockDevices: false });
    const err = await expectError(refusing.register(projectId(), { name: 'dev', path: device }), 400, 'OpenVBS.1101');
    expect(err.message).toMatch(/block device.*OPENVBS_ALLOW_BLOCK_DEVICES=1/);
    // allowed, the device is taken (or refused only because this process may not read it)
    const allowing = inventoryWith({ volumeRoots: ['/dev'], allowBlockDevices: true });
    const p = projectId();
    const outcome = await allowing.register(p, { name: 'dev', path: device, sizeBytes: 1 << 20 }).then(
      (vol) => vol,
      (e: ServiceError) => e,
    );
    if ('volumeId' in outcome) {
      expect(outcome).toMatchObject({ path: device, managed: false });
      expect(outcome.sizeBytes).toBeGreaterThan(0);
      await allowing.delete(p, outcome.volumeId);
    } else {
      expect(outcome.message).toMatch(/not readable by the service/);
    }
  });
});

describe('managed images', () => {
  it('records the device and inode of the image it creates', async () => {
    const vol = await env.services.volumes.create(projectId(), { name: 'managed', sizeBytes: 8192 });
    const st = await stat(vol.path, { bigint: true });
    expect(vol.fileIdentity).toEqual({ dev: st.dev.toString(), ino: st.ino.toString() });
    await rm(vol.path);
  });
});

describe('settings from the environment', () => {
  it('reads the roots and the block device switch, and refuses relative roots', () => {
    expect(pathRegistrationFromEnv({})).toEqual({ volumeRoots: [], allowBlockDevices: false });
    expect(pathRegistrationFromEnv({ OPENVBS_VOLUME_ROOTS: '/srv/images::/mnt/disks', OPENVBS_ALLOW_BLOCK_DEVICES: '1' })).toEqual({
      volumeRoots: ['/srv/images', '/mnt/disks'],
      allowBlockDevices: true,
    });
    expect(pathRegistrationFromEnv({ OPENVBS_ALLOW_BLOCK_DEVICES: 'yes' }).allowBlockDevices).toBe(false);
    expect(() => pathRegistrationFromEnv({ OPENVBS_VOLUME_ROOTS: '/srv:images' })).toThrow(/images is not an absolute path/);
  });
});

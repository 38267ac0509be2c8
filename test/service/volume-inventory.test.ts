// The local volume inventory: sparse managed images (0600 in 0700 folders), customer keys on volumes, and
// that it never removes a file it did not create for the volume being deleted (registering paths:
// volume-registration.test.ts).
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCatalogStores } from '../../lib/catalog/stores.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';
import { GIB } from '../../lib/service/sizes.ts';
import { VolumeInventory } from '../../lib/volumes/inventory.ts';
import { createServiceEnv, expectServiceError as expectError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;

beforeAll(async () => {
  env = await createServiceEnv();
});
afterAll(async () => env?.close());

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('managed images', () => {
  it('creates a sparse image and removes it with the volume', async () => {
    const p = projectId();
    const vol = await env.services.volumes.create(p, { name: 'data', sizeBytes: 3 * GIB + 7 });
    expect(vol).toMatchObject({ projectId: p, name: 'data', sizeBytes: 3 * GIB + 7, managed: true, status: 'available' });
    expect(vol.kmsKeyId).toBeUndefined();
    expect(vol.path).toBe(join(env.dataDir, 'volumes', p, `${vol.volumeId}.img`));
    const st = await stat(vol.path);
    expect(st.size).toBe(3 * GIB + 7);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024); // sparse
    expect((await env.services.volumes.list(p)).map((v) => v.volumeId)).toEqual([vol.volumeId]);
    expect(await env.services.volumes.list(projectId())).toEqual([]);
    await env.services.volumes.delete(p, vol.volumeId);
    await expect(stat(vol.path)).rejects.toThrow(/ENOENT/);
    await expectError(env.services.volumes.get(p, vol.volumeId), 404, 'OpenVBS.0404');
    await expectError(env.services.volumes.delete(p, vol.volumeId), 404, 'OpenVBS.0404');
  });

  it('creates images with mode 0600 in folders of mode 0700, narrowing folders that were wider', async () => {
    const p = projectId();
    const projectDir = join(env.dataDir, 'volumes', p);
    await mkdir(projectDir, { recursive: true, mode: 0o755 });
    await chmod(join(env.dataDir, 'volumes'), 0o755);
    await chmod(projectDir, 0o777);
    const vol = await env.services.volumes.create(p, { name: 'private', sizeBytes: 4096 });
    expect(await mode(vol.path)).toBe(0o600);
    expect(await mode(projectDir)).toBe(0o700);
    expect(await mode(join(env.dataDir, 'volumes'))).toBe(0o700);

    const fresh = projectId();
    const other = await env.services.volumes.create(fresh, { name: 'new-folder', sizeBytes: 4096 });
    expect(await mode(join(env.dataDir, 'volumes', fresh))).toBe(0o700);
    expect(await mode(other.path)).toBe(0o600);
  });

  it('never removes the images of another instance or files a user keeps in the managed area', async () => {
    const p = projectId();
    // Another instance on the same data folder, with its own catalog.
    const otherTable = new SqliteTable(':memory:');
    const otherInventory = new VolumeInventory({ volumes: createCatalogStores(otherTable).volumes, keys: env.keys, dataDir: env.dataDir });
    try {
      const theirs = await otherInventory.create(p, { name: 'theirs', sizeBytes: 8192 });
      await writeFile(theirs.path, 'their data');
      const userFile = join(env.dataDir, 'volumes', p, 'notes.txt');
      await writeFile(userFile, 'keep me');
      const strayImage = join(env.dataDir, 'volumes', p, 'not-in-any-catalog.img');
      await writeFile(strayImage, 'stray');
      const before = (await readdir(join(env.dataDir, 'volumes', p))).sort();

      const mine = await env.services.volumes.create(p, { name: 'mine', sizeBytes: 4096 });
      const mine2 = await env.services.volumes.create(p, { name: 'mine-2', sizeBytes: 4096 });
      await env.services.volumes.delete(p, mine.volumeId);

      expect(await readFile(theirs.path, 'utf8')).toBe('their data');
      expect(await readFile(userFile, 'utf8')).toBe('keep me');
      expect(await readFile(strayImage, 'utf8')).toBe('stray');
      expect((await readdir(join(env.dataDir, 'volumes', p))).sort()).toEqual([...before, `${mine2.volumeId}.img`].sort());
      // and the other instance still has its volume
      expect((await otherInventory.get(p, theirs.volumeId)).path).toBe(theirs.path);
    } finally {
      otherTable.close();
    }
  });

  it('keeps the file of a managed record whose path is not where this inventory puts images', async () => {
    const p = projectId();
    const elsewhere = join(env.dir, 'moved-home.img');
    await writeFile(elsewhere, 'old home');
    const at = new Date().toISOString();
    await env.stores.volumes.create({ projectId: p, volumeId: 'moved', name: 'moved', sizeBytes: 8, path: elsewhere, managed: true, status: 'available', createdAt: at, updatedAt: at });
    await env.services.volumes.delete(p, 'moved');
    expect(await readFile(elsewhere, 'utf8')).toBe('old home');
  });

  it('validates names and sizes', async () => {
    const p = projectId();
    await expectError(env.services.volumes.create(p, { name: '', sizeBytes: 1 }), 400, 'OpenVBS.1101');
    await expectError(env.services.volumes.create(p, { name: 'x'.repeat(256), sizeBytes: 1 }), 400, 'OpenVBS.1101');
    await expectError(env.services.volumes.create(p, { name: 'x', sizeBytes: 0 }), 400, 'OpenVBS.1101');
    await expectError(env.services.volumes.create(p, { name: 'x', sizeBytes: 1.5 }), 400, 'OpenVBS.1101');
    await expectError(env.services.volumes.create('../evil', { name: 'x', sizeBytes: 1 }), 400, 'OpenVBS.0400');
  });
});

describe('customer keys on volumes', () => {
  it('takes a key of the project by id, ARN or alias and records its ARN', async () => {
    const p = projectId();
    const key = await env.services.keys.create(p, { alias: `alias/vol-${p}` });
    for (const ref of [key.keyId, key.arn, key.alias!]) {
      const vol = await env.services.volumes.create(p, { name: 'enc', sizeBytes: 4096, kmsKeyId: ref });
      expect(vol.kmsKeyId).toBe(key.arn);
    }
  });

  it('refuses another project’s key, the service’s own and unknown keys', async () => {
    const p = projectId();
    const foreign = await env.services.keys.create(projectId(), {});
    const serviceKey = await env.keys.createKey({ alias: `alias/service-${p}` });
    for (const ref of [foreign.arn, foreign.keyId, serviceKey.arn, 'alias/nothing-here', 'arn:aws:kms:us-east-1:000000000000:key/cust']) {
      await expectError(env.services.volumes.create(p, { name: 'enc', sizeBytes: 4096, kmsKeyId: ref }), 404, 'OpenVBS.1104');
    }
    // nothing was created for the refused requests
    expect(await env.services.volumes.list(p)).toEqual([]);
  });
});

describe('busy volumes', () => {
  it('refuses to delete a volume a job holds, and keeps its image', async () => {
    const p = projectId();
    const vol = await env.services.volumes.create(p, { name: 'held', sizeBytes: 4096 });
    const { jobId } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'holding' });
    await expectError(env.services.volumes.delete(p, vol.volumeId), 409, 'VolumeBackup.0012');
    expect((await stat(vol.path)).size).toBe(4096);
    await env.stores.volumes.release(p, vol.volumeId, jobId);
    await env.services.volumes.delete(p, vol.volumeId);
  });
});

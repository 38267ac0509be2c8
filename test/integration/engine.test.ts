// Backup engine on both backends: the embedded one (SQLite, files, key files) and the AWS one (S3,
// DynamoDB and KMS through the SDK against the emulator), with real image files.
import { copyFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupSegment, prepareBackup, runBackup } from '../../lib/engine/backup.ts';
import { RestoreIntegrityError } from '../../lib/engine/errors.ts';
import { encryptionContext } from '../../lib/engine/key-domains.ts';
import type { BackupRecord, ObjectStore } from '../../lib/engine/ports.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import { distinctNonZeroBlocks, scatterWrites, sha256File, writeDiskImage } from '../support/disk-image.ts';
import { createEngineEnv } from '../support/engine-env.ts';
import type { EngineEnv } from '../support/engine-env.ts';
import { FaultyObjectStore } from '../support/memory-ports.ts';
import { BACKENDS } from '../support/runtime-env.ts';

const BLOCK = 512 * 1024;
const SIZE = 100 * 1024 * 1024 + 123_457; // 201 blocks, the last one partial
const ENGINE = { segmentBlocks: 64, packTargetBytes: 4 * 1024 * 1024 };

async function packBytes(env: EngineEnv): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const obj of env.deps.store.list('packs/')) {
    count++;
    bytes += obj.size;
  }
  return { count, bytes };
}

describe.each(BACKENDS)('backup engine (%s backend)', (backend) => {
  let env: EngineEnv;
  let image: string;
  let imageSha: string;
  let first: BackupRecord;

  beforeAll(async () => {
    env = await createEngineEnv(backend, { engine: ENGINE });
    image = env.path('vol-a.img');
    await writeDiskImage(image, SIZE, 42);
    imageSha = await sha256File(image);
    env.addVolume('p1', 'vol-a', { path: image });
  });
  afterAll(async () => env?.close());

  it('backs up a disk-like image and restores it bit-exact to a new image', async () => {
    first = await runBackup(env.deps, { projectId: 'p1', volumeId: 'vol-a', name: 'first' });
    expect(first.status).toBe('available');
    expect(first.parentId).toBeUndefined();
    expect(first.segmentCount).toBe(4);
    const stats = first.stats!;
    expect(stats.blocks).toBe(201);
    expect(stats.zeroBlocks).toBeGreaterThan(20);
    expect(stats.chunkCount + stats.zeroBlocks).toBe(201);
    expect(stats.newChunks + stats.dedupHits).toBe(stats.chunkCount);
    // compression: text-like regions shrink, so stored < logical
    expect(stats.storedBytes).toBeLessThan(stats.logicalBytes);
    const packs = await packBytes(env);
    expect(packs.count).toBe(stats.packsWritten);
    expect(packs.count).toBeGreaterThan(1);
    expect(packs.count).toBeLessThan(stats.newChunks); // packed, not one object per chunk

    env.addVolume('p1', 'restore-1', { path: env.path('restore-1.img') });
    const result = await restoreBackup(env.deps, { projectId: 'p1', backupId: first.backupId, targetVolumeId: 'restore-1' });
    expect(result.blocks).toBe(201);
    expect(await sha256File(env.path('restore-1.img'))).toBe(imageSha);
  });

  it('restores over an existing larger image, overwriting zero blocks', async () => {
    const target = env.path('existing.img');
    await writeFile(target, Buffer.alloc(SIZE + BLOCK, 0xab));
    env.addVolume('p1', 'existing', { path: target });
    await restoreBackup(env.deps, { projectId: 'p1', backupId: first.backupId, targetVolumeId: 'existing' });
    expect(await sha256File(target, SIZE)).toBe(imageSha);
  });

  it('refuses a target smaller than the backup', async () => {
    const target = env.path('small.img');
    await writeFile(target, Buffer.alloc(BLOCK));
    env.addVolume('p1', 'small', { path: target });
    await expect(restoreBackup(env.deps, { projectId: 'p1', backupId: first.backupId, targetVolumeId: 'small' })).rejects.toThrow(/smaller than|needs/);
  });

  it('stores only the changed blocks in an incremental backup, and both restore bit-exact', async () => {
    const before = await packBytes(env);
    const changed = await scatterWrites(image, SIZE, BLOCK, 0.01, 3);
    expect(changed.length).toBe(2);
    const changedSha = await sha256File(image);
    const second = await runBackup(env.deps, { projectId: 'p1', volumeId: 'vol-a', name: 'second' });
    expect(second.parentId).toBe(first.backupId);
    const s = second.stats!;
    expect(s.newChunks).toBe(changed.length);
    expect(s.reusedFromParent).toBe(s.chunkCount - changed.length);
    expect(s.storedBytes).toBeGreaterThan(0);
    expect(s.storedBytes).toBeLessThanOrEqual(changed.length * (BLOCK + 29));
    const after = await packBytes(env);
    expect(after.count - before.count).toBe(s.packsWritten);
    // pack growth = the new chunks plus one small header and trailer per pack
    expect(after.bytes - before.bytes - s.storedBytes).toBeLessThan(s.packsWritten * 1024);

    env.addVolume('p1', 'r-first', { path: env.path('r-first.img') });
    env.addVolume('p1', 'r-second', { path: env.path('r-second.img') });
    await restoreBackup(env.deps, { projectId: 'p1', backupId: first.backupId, targetVolumeId: 'r-first' });
    await restoreBackup(env.deps, { projectId: 'p1', backupId: second.backupId, targetVolumeId: 'r-second' });
    expect(await sha256File(env.path('r-first.img'))).toBe(imageSha);
    expect(await sha256File(env.path('r-second.img'))).toBe(changedSha);
  });

  it('shares chunks between identical volumes of one project, not across projects', async () => {
    const twin = env.path('twin.img');
    await copyFile(image, twin);
    env.addVolume('p1', 'twin', { path: twin });
    env.addVolume('p2', 'twin', { path: twin });
    const same = await runBackup(env.deps, { projectId: 'p1', volumeId: 'twin', name: 'twin' });
    expect(same.parentId).toBeUndefined();
    expect(same.stats!.newChunks).toBe(0);
    expect(same.stats!.dedupHits).toBe(same.stats!.chunkCount);
    expect(same.stats!.packsWritten).toBe(0);

    const other = await runBackup(env.deps, { projectId: 'p2', volumeId: 'twin', name: 'twin' });
    expect(other.domainId).not.toBe(same.domainId);
    expect(other.stats!.newChunks).toBeGreaterThan(0);
    expect(other.stats!.newChunks + other.stats!.dedupHits).toBe(other.stats!.chunkCount);
    // a fresh domain stores each distinct block once; its only hits are blocks repeated inside the image
    expect(other.stats!.newChunks).toBe(await distinctNonZeroBlocks(twin, BLOCK));
  });

  it('backs up a volume encrypted with a customer key under that key, in a separate domain', async () => {
    const cmk = (await env.backend.keys.createKey({ owner: 'p1', description: 'customer key' })).arn;
    env.addVolume('p1', 'enc', { path: image, kmsKeyId: cmk });
    const enc = await runBackup(env.deps, { projectId: 'p1', volumeId: 'enc', name: 'enc' });
    expect(enc.kmsKeyId).toBe(cmk);
    expect(enc.customerKey).toBe(true);
    expect(enc.domainId).not.toBe(first.domainId);
    expect(enc.stats!.newChunks).toBeGreaterThan(0); // no dedup with the service-key domain
    const domain = await env.deps.catalog.getDomain('p1', cmk);
    expect(domain?.domainId).toBe(enc.domainId);
    env.addVolume('p1', 'r-enc', { path: env.path('r-enc.img') });
    await restoreBackup(env.deps, { projectId: 'p1', backupId: enc.backupId, targetVolumeId: 'r-enc' });
    expect(await sha256File(env.path('r-enc.img'))).toBe(await sha256File(image));
  });

  it('cannot unwrap a domain key with the wrong encryption context or another KMS key', async () => {
    const keys = env.backend.keys;
    const domain = (await env.deps.catalog.getDomain('p1', env.backend.serviceKeyId))!;
    const right = await keys.unwrap(domain.kmsKeyId, domain.wrappedKey, encryptionContext('p1', domain.domainId));
    expect(right.length).toBe(32);
    await expect(keys.unwrap(domain.kmsKeyId, domain.wrappedKey, encryptionContext('p2', domain.domainId))).rejects.toThrow();
    await expect(keys.unwrap(domain.kmsKeyId, domain.wrappedKey, encryptionContext('p1', 'd-other'))).rejects.toThrow();
    const otherKey = (await keys.createKey({ owner: 'p1' })).arn;
    await expect(keys.unwrap(otherKey, domain.wrappedKey, encryptionContext('p1', domain.domainId))).rejects.toThrow();
  });

  it('fails a restore from a pack with a flipped byte, naming backup, block and pack', async () => {
    const victim = await runBackup(env.deps, { projectId: 'p3', volumeId: 'v', name: 'victim' }).catch(() => undefined);
    expect(victim).toBeUndefined(); // volume unknown in p3: nothing is created
    const dupImage = env.path('flip.img');
    await writeDiskImage(dupImage, 8 * 1024 * 1024, 99, { zero: 0, text: 1, random: 0, copy: 0 });
    env.addVolume('p3', 'flip', { path: dupImage });
    const backup = await runBackup(env.deps, { projectId: 'p3', volumeId: 'flip', name: 'flip' });
    let packKey = '';
    for await (const obj of env.deps.store.list(`packs/${backup.domainId}/`)) packKey = obj.key;
    const body = await env.backend.objects.get(packKey);
    body[100] = body[100]! ^ 0x01; // inside the first chunk's ciphertext
    await env.backend.objects.put(packKey, body);
    env.addVolume('p3', 'r-flip', { path: env.path('r-flip.img') });
    const err = await restoreBackup(env.deps, { projectId: 'p3', backupId: backup.backupId, targetVolumeId: 'r-flip' }).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreIntegrityError);
    expect(err.backupId).toBe(backup.backupId);
    expect(err.pack).toBe(packKey);
    expect(err.blockIndex).toBeGreaterThanOrEqual(0);
    expect(err.message).toContain(backup.backupId);
    expect(err.message).toContain(packKey);
    expect(err.message).toMatch(/block \d+/);
  });

  it('fails a restore whose pack is missing', async () => {
    const img = env.path('gone.img');
    await writeDiskImage(img, 4 * 1024 * 1024, 5, { zero: 0, text: 0, random: 1, copy: 0 });
    env.addVolume('p4', 'gone', { path: img });
    const backup = await runBackup(env.deps, { projectId: 'p4', volumeId: 'gone', name: 'gone' });
    const keys: string[] = [];
    for await (const obj of env.deps.store.list(`packs/${backup.domainId}/`)) keys.push(obj.key);
    await env.deps.store.delete(keys.slice(0, 1));
    env.addVolume('p4', 'r-gone', { path: env.path('r-gone.img') });
    const err = await restoreBackup(env.deps, { projectId: 'p4', backupId: backup.backupId, targetVolumeId: 'r-gone' }).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreIntegrityError);
    expect(err.pack).toBe(keys[0]);
    expect(err.reason).toMatch(/missing/);
  });

  it('leaves no available backup when killed half-way, and the earlier backup still restores', async () => {
    const img = env.path('crash.img');
    await writeDiskImage(img, 40 * 1024 * 1024, 11, { zero: 0.1, text: 0.3, random: 0.6, copy: 0 });
    const imgSha = await sha256File(img);
    env.addVolume('p5', 'crash', { path: img });
    const good = await runBackup(env.deps, { projectId: 'p5', volumeId: 'crash', name: 'good' });
    await scatterWrites(img, 40 * 1024 * 1024, BLOCK, 0.5, 9);

    let faulty: FaultyObjectStore | undefined;
    const failing = env.withStore((s: ObjectStore) => {
      faulty = new FaultyObjectStore(s).failOn({ method: 'put', key: (k) => k.startsWith('packs/'), call: 3, error: new Error('injected: connection reset') });
      return faulty;
    });
    await expect(runBackup(failing, { projectId: 'p5', volumeId: 'crash', name: 'doomed' })).rejects.toThrow(/injected/);
    expect(faulty!.calls.put).toBeGreaterThanOrEqual(3);
    const latest = await env.deps.catalog.latestBackup('p5', 'crash', 'available');
    expect(latest?.backupId).toBe(good.backupId);
    const failed = await env.deps.catalog.latestBackup('p5', 'crash', 'error');
    expect(failed?.name).toBe('doomed');
    expect(failed?.failReason).toMatch(/injected/);

    // a process that dies between segments leaves the backup `creating`, never available
    const interrupted = await prepareBackup(env.deps, { projectId: 'p5', volumeId: 'crash', name: 'interrupted' });
    await backupSegment(env.deps, 'p5', interrupted.backupId, 0);
    expect((await env.deps.catalog.getBackup('p5', interrupted.backupId))?.status).toBe('creating');
    expect((await env.deps.catalog.latestBackup('p5', 'crash', 'available'))?.backupId).toBe(good.backupId);

    env.addVolume('p5', 'r-crash', { path: env.path('r-crash.img') });
    await restoreBackup(env.deps, { projectId: 'p5', backupId: good.backupId, targetVolumeId: 'r-crash' });
    expect(await sha256File(env.path('r-crash.img'))).toBe(imgSha);
  });
});


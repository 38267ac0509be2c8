// Backup engine on both backends: the embedded one (SQLite, files, key files) and the AWS one (S3,
// DynamoDB and KMS through the SDK against the emulator), with real image files.
import { copyFile, open, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTENT_BLOCKS, DEFAULT_SUB_CHUNK_SIZE, backupSegment, newBackupId, prepareBackup, runBackup } from '../../lib/engine/backup.ts';
import { CHUNK_ID_BYTES, SEAL_OVERHEAD, chunkId, isAllZero, sealChunk, sealMetadata } from '../../lib/engine/chunk-codec.ts';
import type { EngineDeps } from '../../lib/engine/engine.ts';
import { EngineStateError, RestoreIntegrityError } from '../../lib/engine/errors.ts';
import { encryptionContext } from '../../lib/engine/key-domains.ts';
import { addStats, decodeManifest, emptyStats, manifestKey } from '../../lib/engine/manifest.ts';
import { PackWriter } from '../../lib/engine/pack-writer.ts';
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

const EXTENT = DEFAULT_EXTENT_BLOCKS * BLOCK;

/** The image's units of `unit` bytes that are not all zeros: how many, and their bytes. */
async function nonZeroUnits(path: string, unit: number): Promise<{ count: number; bytes: number }> {
  const data = await readFile(path);
  let count = 0;
  let bytes = 0;
  for (let at = 0; at < data.length; at += unit) {
    const part = data.subarray(at, Math.min(data.length, at + unit));
    if (isAllZero(part)) continue;
    count++;
    bytes += part.length;
  }
  return { count, bytes };
}

/** Units of `unit` bytes that differ between two images: what an incremental has to look at. */
async function changedUnits(before: Buffer, path: string, unit: number): Promise<{ units: number; blocks: Set<number> }> {
  const after = await readFile(path);
  let units = 0;
  const blocks = new Set<number>();
  for (let at = 0; at < after.length; at += unit) {
    const end = Math.min(after.length, at + unit);
    if (before.compare(after, at, end, at, end) === 0) continue;
    units++;
    blocks.add(Math.floor(at / BLOCK));
  }
  return { units, blocks };
}

/**
 * A backup as OpenVBS wrote it before sub-chunks (manifest version 1, docs/format.md): one chunk per
 * non-zero block under its version-1 id (the HMAC of the block), packed and indexed, committed.
 */
async function writeVersion1Backup(deps: EngineDeps, projectId: string, volumeId: string, path: string): Promise<BackupRecord> {
  const { blockSize, segmentBlocks } = deps.config;
  const volume = await deps.volumes.describe(projectId, volumeId);
  const domain = await deps.domains.forVolume(projectId, volume.kmsKeyId);
  const backupId = newBackupId();
  const now = new Date().toISOString();
  const blocks = Math.ceil(volume.sizeBytes / blockSize);
  const rec: BackupRecord = {
    projectId, backupId, volumeId, name: 'written by version 1', status: 'creating', sizeBytes: volume.sizeBytes, blockSize, segmentBlocks,
    segmentCount: Math.ceil(blocks / segmentBlocks), domainId: domain.domainId, kmsKeyId: domain.kmsKeyId, customerKey: false,
    createdAt: now, updatedAt: now, manifestPrefix: `manifests/${projectId}/${backupId}/`,
  };
  await deps.catalog.createBackup(rec);
  const data = await readFile(path);
  const total = emptyStats();
  for (let segment = 0; segment < rec.segmentCount; segment++) {
    const firstBlock = segment * segmentBlocks;
    const blockCount = Math.min(segmentBlocks, blocks - firstBlock);
    const ids = Buffer.alloc(blockCount * CHUNK_ID_BYTES);
    const packs = new PackWriter(deps.store, deps.index, domain, deps.pool, 4 * 1024 * 1024, blockSize + SEAL_OVERHEAD, 2);
    const stats = { blocks: blockCount, zeroBlocks: 0, chunkCount: 0, reusedFromParent: 0, dedupHits: 0, newChunks: 0, storedBytes: 0, logicalBytes: 0, packsWritten: 0 };
    const stored = new Set<string>();
    for (let j = 0; j < blockCount; j++) {
      const block = data.subarray((firstBlock + j) * blockSize, Math.min(data.length, (firstBlock + j + 1) * blockSize));
      if (isAllZero(block)) {
        stats.zeroBlocks++;
        continue;
      }
      const id = chunkId(domain.keys, block);
      id.copy(ids, j * CHUNK_ID_BYTES);
      stats.chunkCount++;
      stats.logicalBytes += block.length;
      if (stored.has(id.toString('hex'))) continue;
      stored.add(id.toString('hex'));
      const out = Buffer.alloc(block.length + SEAL_OVERHEAD);
      const len = sealChunk(domain.keys, id, block, out, 0);
      packs.add(id, out.subarray(0, len));
      stats.newChunks++;
      stats.storedBytes += len;
    }
    await packs.finish();
    stats.packsWritten = packs.packsWritten;
    const json = Buffer.from(JSON.stringify({ firstBlock, blockCount, stats }));
    const head = Buffer.alloc(4);
    head.writeUInt32LE(json.length);
    const sealed = sealMetadata(domain.keys, `manifest:v1:${backupId}:${segment}`, Buffer.concat([head, json, ids]));
    await deps.store.put(manifestKey(rec.manifestPrefix, segment), Buffer.concat([Buffer.of(1), sealed]));
    addStats(total, stats);
  }
  // committed as that version did: the summed statistics, status available
  return deps.catalog.updateBackup(projectId, backupId, { status: 'available', stats: total, completedAt: now }, ['creating']);
}

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
  let changedBlocks: number[] = [];

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
    expect(first.subChunkSize).toBe(DEFAULT_SUB_CHUNK_SIZE);
    expect(first.extentBlocks).toBe(DEFAULT_EXTENT_BLOCKS);
    const stats = first.stats!;
    expect(stats.blocks).toBe(201);
    expect(stats.zeroBlocks).toBeGreaterThan(20);
    expect(stats.chunkCount + stats.zeroBlocks).toBe(201);
    expect(stats.logicalBytes).toBe((await nonZeroUnits(image, BLOCK)).bytes);
    // a full backup stores extents: each non-zero one is new or found stored
    expect(stats.newChunks + stats.dedupHits).toBe((await nonZeroUnits(image, EXTENT)).count);
    expect(stats.newSubChunks).toBe(0);
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

  it('stores only what changed in an incremental backup, and both restore bit-exact', async () => {
    const before = await packBytes(env);
    const original = await readFile(image);
    const changed = await scatterWrites(image, SIZE, BLOCK, 0.01, 3);
    expect(changed.length).toBe(2);
    changedBlocks = changed;
    const subs = await changedUnits(original, image, DEFAULT_SUB_CHUNK_SIZE);
    const changedSha = await sha256File(image);
    const second = await runBackup(env.deps, { projectId: 'p1', volumeId: 'vol-a', name: 'second' });
    expect(second.parentId).toBe(first.backupId);
    const s = second.stats!;
    expect(s.reusedFromParent).toBe(201 - s.zeroBlocks - changed.length);
    // a 4 KiB write costs its sub-chunks (one, or two across a boundary), never a whole block
    expect(s.newChunks).toBeGreaterThan(0);
    expect(s.newChunks).toBeLessThanOrEqual(subs.units);
    expect(s.storedBytes).toBeGreaterThan(0);
    expect(s.storedBytes).toBeLessThanOrEqual(subs.units * (DEFAULT_SUB_CHUNK_SIZE + SEAL_OVERHEAD));
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
    // A forced full looks every extent up: only the extents the incremental changed are stored whole.
    const forced = await runBackup(env.deps, { projectId: 'p1', volumeId: 'vol-a', name: 'forced full', forceFull: true });
    expect(forced.parentId).toBeUndefined();
    expect(forced.stats!.newChunks).toBe(new Set(changedBlocks.map((b) => Math.floor(b / DEFAULT_EXTENT_BLOCKS))).size);
    expect(forced.stats!.newChunks + forced.stats!.dedupHits).toBe((await nonZeroUnits(image, EXTENT)).count);

    const twin = env.path('twin.img');
    await copyFile(image, twin);
    env.addVolume('p1', 'twin', { path: twin });
    env.addVolume('p2', 'twin', { path: twin });
    const same = await runBackup(env.deps, { projectId: 'p1', volumeId: 'twin', name: 'twin' });
    expect(same.parentId).toBeUndefined();
    expect(same.stats!.newChunks).toBe(0);
    expect(same.stats!.dedupHits).toBe((await nonZeroUnits(twin, EXTENT)).count);
    expect(same.stats!.packsWritten).toBe(0);

    const other = await runBackup(env.deps, { projectId: 'p2', volumeId: 'twin', name: 'twin' });
    expect(other.domainId).not.toBe(same.domainId);
    expect(other.stats!.newChunks).toBeGreaterThan(0);
    expect(other.stats!.newChunks + other.stats!.dedupHits).toBe((await nonZeroUnits(twin, EXTENT)).count);
    // a fresh domain stores each distinct extent once; its only hits are extents repeated inside the image
    expect(other.stats!.newChunks).toBe(await distinctNonZeroBlocks(twin, EXTENT));
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

  it('stores an incremental of 4 KiB scattered writes as changed sub-chunks x sub-chunk size, and restores a chain of them', async () => {
    // Random data: every stored sub-chunk is raw, so the stored bytes are exact.
    const img = env.path('random.img');
    const size = 16 * 1024 * 1024;
    await writeDiskImage(img, size, 21, { zero: 0, text: 0, random: 1, copy: 0 });
    env.addVolume('p6', 'random', { path: img });
    const shas = [await sha256File(img)];
    const backups = [await runBackup(env.deps, { projectId: 'p6', volumeId: 'random', name: 'full' })];
    expect(backups[0]!.stats!.newChunks).toBe(size / EXTENT);

    for (const seed of [4, 5]) {
      const original = await readFile(img);
      const written = await scatterWrites(img, size, BLOCK, 0.25, seed);
      const subs = await changedUnits(original, img, DEFAULT_SUB_CHUNK_SIZE);
      expect(subs.blocks.size).toBe(written.length);
      shas.push(await sha256File(img));
      const incremental = await runBackup(env.deps, { projectId: 'p6', volumeId: 'random', name: `incremental ${seed}` });
      expect(incremental.parentId).toBe(backups.at(-1)!.backupId);
      const s = incremental.stats!;
      expect(s.newChunks).toBe(subs.units);
      expect(s.newSubChunks).toBe(subs.units);
      expect(s.storedBytes).toBe(subs.units * (DEFAULT_SUB_CHUNK_SIZE + SEAL_OVERHEAD));
      expect(s.storedBytes).toBeLessThan(written.length * BLOCK / 4);
      expect(s.reusedFromParent).toBe(size / BLOCK - written.length);
      expect(s.reusedSubChunks).toBe(written.length * (BLOCK / DEFAULT_SUB_CHUNK_SIZE) - subs.units);
      backups.push(incremental);
    }

    // each backup of the chain restores as it was, the last one made of pieces of all three
    for (const [i, b] of backups.entries()) {
      env.addVolume('p6', `r-random-${i}`, { path: env.path(`r-random-${i}.img`) });
      await restoreBackup(env.deps, { projectId: 'p6', backupId: b.backupId, targetVolumeId: `r-random-${i}` });
      expect(await sha256File(env.path(`r-random-${i}.img`)), `backup ${i}`).toBe(shas[i]);
    }
  });

  it('restores a sub-chunk that became zeros inside a changed block over a target full of other data', async () => {
    const img = env.path('gap.img');
    const size = 4 * 1024 * 1024;
    await writeDiskImage(img, size, 24, { zero: 0, text: 0.5, random: 0.5, copy: 0 });
    env.addVolume('p9', 'gap', { path: img });
    await runBackup(env.deps, { projectId: 'p9', volumeId: 'gap', name: 'full' });
    const fh = await open(img, 'r+');
    await fh.write(Buffer.alloc(DEFAULT_SUB_CHUNK_SIZE), 0, DEFAULT_SUB_CHUNK_SIZE, 2 * BLOCK + 3 * DEFAULT_SUB_CHUNK_SIZE);
    await fh.write(Buffer.alloc(4096, 0x77), 0, 4096, 2 * BLOCK + 5 * DEFAULT_SUB_CHUNK_SIZE + 10);
    await fh.close();
    const incremental = await runBackup(env.deps, { projectId: 'p9', volumeId: 'gap', name: 'incremental' });
    expect(incremental.stats!.newSubChunks).toBe(1); // the zeroed sub-chunk is described, not stored
    const target = env.path('gap-target.img');
    await writeFile(target, Buffer.alloc(size, 0xab));
    env.addVolume('p9', 'gap-target', { path: target });
    await restoreBackup(env.deps, { projectId: 'p9', backupId: incremental.backupId, targetVolumeId: 'gap-target' });
    expect(await sha256File(target)).toBe(await sha256File(img));
  });

  it('takes the sub-chunk size per backup, records it, and compares only with a parent of the same size', async () => {
    const img = env.path('sub16.img');
    const size = 8 * 1024 * 1024 + 5000;
    await writeDiskImage(img, size, 22, { zero: 0.2, text: 0.4, random: 0.4, copy: 0 });
    env.addVolume('p7', 'sub16', { path: img });
    const sub = 16 * 1024;
    const full = await runBackup(env.deps, { projectId: 'p7', volumeId: 'sub16', name: 'full', subChunkSize: sub });
    expect(full.subChunkSize).toBe(sub);
    const original = await readFile(img);
    await scatterWrites(img, size, BLOCK, 0.2, 8);
    const subs = await changedUnits(original, img, sub);
    const sha = await sha256File(img);
    const incremental = await runBackup(env.deps, { projectId: 'p7', volumeId: 'sub16', name: 'incremental', subChunkSize: sub });
    expect(incremental.stats!.newChunks).toBeLessThanOrEqual(subs.units);
    expect(incremental.stats!.storedBytes).toBeLessThanOrEqual(subs.units * (sub + SEAL_OVERHEAD));
    // with another sub-chunk size the parent's fingerprints do not apply: changed extents are stored whole
    const other = await runBackup(env.deps, { projectId: 'p7', volumeId: 'sub16', name: 'other size' });
    expect(other.stats!.reusedFromParent).toBe(0);
    expect(other.stats!.newSubChunks).toBe(0);
    for (const b of [incremental, other]) {
      env.addVolume('p7', `r-${b.name}`, { path: env.path(`r-sub16-${b.backupId}.img`) });
      await restoreBackup(env.deps, { projectId: 'p7', backupId: b.backupId, targetVolumeId: `r-${b.name}` });
      expect(await sha256File(env.path(`r-sub16-${b.backupId}.img`))).toBe(sha);
    }
    await expect(runBackup(env.deps, { projectId: 'p7', volumeId: 'sub16', name: 'bad', subChunkSize: 3000 })).rejects.toThrow(EngineStateError);
  });

  it('restores a backup written before sub-chunks (manifest version 1), and backs up anew on top of it', async () => {
    const img = env.path('v1.img');
    const size = 6 * 1024 * 1024 + 777;
    await writeDiskImage(img, size, 23, { zero: 0.3, text: 0.4, random: 0.3, copy: 0 });
    const sha = await sha256File(img);
    env.addVolume('p8', 'v1', { path: img });
    const old = await writeVersion1Backup(env.deps, 'p8', 'v1', img);
    expect(old.status).toBe('available');
    expect(old.subChunkSize).toBeUndefined();
    const domain = await env.deps.domains.forBackup('p8', old.kmsKeyId, old.domainId);
    expect(decodeManifest(domain.keys, old.backupId, 0, await env.deps.store.get(manifestKey(old.manifestPrefix, 0))).version).toBe(1);

    env.addVolume('p8', 'r-v1', { path: env.path('r-v1.img') });
    await restoreBackup(env.deps, { projectId: 'p8', backupId: old.backupId, targetVolumeId: 'r-v1' });
    expect(await sha256File(env.path('r-v1.img'))).toBe(sha);

    // the next backup has the version-1 one as parent but cannot compare sub-chunks with it
    const fh = await open(img, 'r+');
    await fh.write(Buffer.alloc(4096, 0x5a), 0, 4096, 3 * BLOCK + 100);
    await fh.close();
    const next = await runBackup(env.deps, { projectId: 'p8', volumeId: 'v1', name: 'after the upgrade' });
    expect(next.parentId).toBe(old.backupId);
    expect(next.stats!.reusedFromParent).toBe(0);
    expect(next.stats!.newChunks + next.stats!.dedupHits).toBe((await nonZeroUnits(img, EXTENT)).count);
    env.addVolume('p8', 'r-v2', { path: env.path('r-v2.img') });
    await restoreBackup(env.deps, { projectId: 'p8', backupId: next.backupId, targetVolumeId: 'r-v2' });
    expect(await sha256File(env.path('r-v2.img'))).toBe(await sha256File(img));
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
    // forced full: every changed extent is stored whole, enough packs to fail the third
    await expect(runBackup(failing, { projectId: 'p5', volumeId: 'crash', name: 'doomed', forceFull: true })).rejects.toThrow(/injected/);
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


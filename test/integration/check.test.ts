// Integrity check on both backends: a clean repository passes; a flipped byte in a pack (found by reading
// data), a deleted pack, a deleted index entry, a damaged pack header and a damaged or missing manifest are
// each found and named by backup, segment, blocks, pack and chunk.
import { DatabaseSync } from 'node:sqlite';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import { runBackup } from '../../lib/engine/backup.ts';
import { blockRuns, checkRepository, chunkRanges, packSelected } from '../../lib/engine/check.ts';
import type { CheckReport } from '../../lib/engine/check.ts';
import { decodeManifest, manifestChunkId, manifestKey } from '../../lib/engine/manifest.ts';
import { readPackHeader } from '../../lib/engine/pack.ts';
import type { BackupRecord } from '../../lib/engine/ports.ts';
import { embeddedPaths } from '../../lib/wiring/backend.ts';
import { scatterWrites, writeDiskImage } from '../support/disk-image.ts';
import { createEngineEnv } from '../support/engine-env.ts';
import type { EngineEnv } from '../support/engine-env.ts';
import { BACKENDS } from '../support/runtime-env.ts';
import type { Notification } from '../../lib/notify/notifier.ts';
import { checkRunStep } from '../../lib/workflows/steps/check.ts';
import { installProcessRuntime } from '../../lib/wiring/runtime.ts';
import { handler as checkRun } from '../../functions/check-run.ts';

const BLOCK = 512 * 1024;
const SIZE = 12 * 1024 * 1024 + 4096; // 25 blocks, the last one short: 4 segments of 8 blocks
const ENGINE = { segmentBlocks: 8, packTargetBytes: 1024 * 1024 };
const TEXT = { zero: 0.2, text: 0.5, random: 0.3, copy: 0 };

describe('check helpers', () => {
  it('picks the same packs for the same seed, other packs for another, about the percentage asked', () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `packs/d-x/${String(i % 100).padStart(2, '0')}/${i.toString(16).padStart(32, '0')}`);
    const pick = (seed: string) => keys.filter((k) => packSelected(k, 25, seed));
    expect(pick('a')).toEqual(pick('a'));
    expect(pick('a')).not.toEqual(pick('b'));
    for (const seed of ['', 'a', 'b']) {
      expect(pick(seed).length).toBeGreaterThan(400);
      expect(pick(seed).length).toBeLessThan(600);
    }
    expect(keys.every((k) => packSelected(k, 100))).toBe(true);
    expect(keys.some((k) => packSelected(k, 0))).toBe(false);
  });

  it('groups a pack into ranges bounded by sealed bytes and by the plaintext they may open to', () => {
    const entries = Array.from({ length: 10 }, (_, i) => ({ id: Buffer.alloc(32, i), offset: i * 1_000_000, length: 1_000_000 }));
    expect(chunkRanges(entries, 4 * 1024 * 1024, 4 * 1024 * 1024).map((r) => r.length)).toEqual([4, 4, 2]);
    expect(chunkRanges(entries, 2_500_000, 64 * 1024).map((r) => r.length)).toEqual([2, 2, 2, 2, 2]);
    // a chunk larger than the range travels alone
    expect(chunkRanges([{ id: Buffer.alloc(32), offset: 0, length: 9_000_000 }], 4 * 1024 * 1024, 4 * 1024 * 1024)).toHaveLength(1);
    expect(blockRuns([3, 4, 5, 9, 11, 12])).toEqual([[3, 5], [9, 9], [11, 12]]);
  });
});

describe.each(BACKENDS)('check (%s backend)', (backend) => {
  let env: EngineEnv;

  beforeAll(async () => {
    env = await createEngineEnv(backend, { engine: ENGINE });
  });
  afterAll(async () => env?.close());

  /** A full backup and an incremental of a fresh volume in its own project. */
  async function twoBackups(projectId: string, seed: number): Promise<{ full: BackupRecord; incr: BackupRecord }> {
    const image = env.path(`${projectId}.img`);
    await writeDiskImage(image, SIZE, seed, TEXT);
    env.addVolume(projectId, 'vol', { path: image });
    const full = await runBackup(env.deps, { projectId, volumeId: 'vol', name: 'full' });
    await scatterWrites(image, SIZE, BLOCK, 0.2, seed + 1);
    const incr = await runBackup(env.deps, { projectId, volumeId: 'vol', name: 'incr' });
    return { full, incr };
  }

  async function packsOf(domainId: string): Promise<Array<{ key: string; size: number }>> {
    const out: Array<{ key: string; size: number }> = [];
    for await (const obj of env.deps.store.list(`packs/${domainId}/`)) out.push(obj);
    return out;
  }

  /** A pack that a segment of the backup wrote (the first backup of its domain), with its header. */
  async function packOf(rec: BackupRecord, segment = 0) {
    const keys = (await env.deps.domains.forBackup(rec.projectId, rec.kmsKeyId, rec.domainId)).keys;
    const m = decodeManifest(keys, rec.backupId, segment, await env.deps.store.get(manifestKey(rec.manifestPrefix, segment)));
    if (m.version !== 2) throw new Error('expected a version-2 manifest');
    const id = manifestChunkId(m, 0).toString('hex');
    const key = (await env.deps.index.lookup(rec.domainId, [id])).get(id)!.pack;
    const size = (await packsOf(rec.domainId)).find((p) => p.key === key)!.size;
    return { key, size, entries: await readPackHeader(env.deps.store, keys, key, size) };
  }

  const check = (projectId: string, readDataPercent = 0) =>
    checkRepository({ engine: env.deps, backups: env.stores.backups }, { projectIds: [projectId], readDataPercent });

  const backupsNamed = (r: CheckReport) => new Set(r.damage.map((d) => d.backupId));

  it('passes a clean repository, reading every pack with --read-data', async () => {
    const { full } = await twoBackups('p-clean', 1);
    const packs = await packsOf(full.domainId);
    const meta = await check('p-clean');
    expect(meta.ok).toBe(true);
    expect(meta.damage).toEqual([]);
    expect(meta).toMatchObject({ projects: 1, backups: 2, manifests: 8, bytesRead: 0, packsRead: 0 });
    expect(meta.chunks).toBeGreaterThan(0);
    expect(meta.packs).toBe(packs.length);

    const data = await check('p-clean', 100);
    expect(data.ok).toBe(true);
    expect(data.packsRead).toBe(packs.length);
    expect(data.chunksRead).toBeGreaterThan(0);
    // every pack's chunk area: all of the packs but their headers and trailers
    const total = packs.reduce((n, p) => n + p.size, 0);
    expect(data.bytesRead).toBeGreaterThan(total * 0.9);
    expect(data.bytesRead).toBeLessThan(total);
    expect(data.readMBps).toBeGreaterThan(0);
  });

  it('does not call a pack missing that the first listing lacked (written since, e.g. by a repack)', async () => {
    const { full } = await twoBackups('p-late', 6);
    const late = (await packOf(full)).key;
    // The domain's listing leaves the pack out, as if it were written after it; a listing of its own key finds it.
    const deps = env.withStore((store) => ({
      ...store,
      put: store.put.bind(store),
      putIfAbsent: store.putIfAbsent.bind(store),
      get: store.get.bind(store),
      getRange: store.getRange.bind(store),
      exists: store.exists.bind(store),
      delete: store.delete.bind(store),
      async *list(prefix: string) {
        for await (const obj of store.list(prefix)) if (obj.key !== late || prefix === late) yield obj;
      },
    }));
    const r = await checkRepository({ engine: deps, backups: env.stores.backups }, { projectIds: ['p-late'], readDataPercent: 100 });
    expect(r.damage).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('finds a flipped byte in a pack only by reading data, and names the backups, blocks and pack', async () => {
    const { full, incr } = await twoBackups('p-flip', 2);
    const { key: victim, entries } = await packOf(full);
    const first = entries[0];
    const body = await env.backend.objects.get(victim);
    body[first!.offset + 20] = body[first!.offset + 20]! ^ 0x01; // inside the first chunk's ciphertext
    await env.backend.objects.put(victim, body);

    expect((await check('p-flip')).ok).toBe(true); // headers and index are intact
    const r = await check('p-flip', 100);
    expect(r.ok).toBe(false);
    const hex = first!.id.toString('hex');
    const found = r.damage.filter((d) => d.kind === 'chunk-data');
    expect(found.length).toBeGreaterThan(0);
    for (const d of found) {
      expect(d.pack).toBe(victim);
      expect(d.chunkIds).toEqual([hex]);
      expect(d.segment).toBeTypeOf('number');
      expect(d.blocks!.length).toBeGreaterThan(0);
      expect(d.what).toMatch(/authentication tag/);
    }
    // the incremental refers to its parent's chunks of unchanged blocks: the one chunk damages both (unless
    // every block that used it changed)
    expect(backupsNamed(r).has(full.backupId)).toBe(true);
    expect(r.damage.every((d) => d.backupId === full.backupId || d.backupId === incr.backupId)).toBe(true);
    expect(r.damagedBackups).toBe(backupsNamed(r).size);
  });

  it('finds a deleted pack without reading data', async () => {
    const { full } = await twoBackups('p-gone', 3);
    const victim = await packOf(full);
    await env.deps.store.delete([victim.key]);
    const r = await check('p-gone');
    expect(r.ok).toBe(false);
    expect(r.damage.length).toBeGreaterThan(0);
    for (const d of r.damage) {
      expect(d).toMatchObject({ kind: 'pack-missing', pack: victim.key, what: 'pack is missing', projectId: 'p-gone', volumeId: 'vol' });
      expect(d.blocks!.length).toBeGreaterThan(0);
      expect(d.chunkIds!.length).toBeGreaterThan(0);
    }
    expect(backupsNamed(r).has(full.backupId)).toBe(true);
  });

  it('finds a deleted index entry, naming the chunk and the blocks that use it', async () => {
    const { full } = await twoBackups('p-index', 4);
    const [entry] = (await packOf(full)).entries;
    const hex = entry!.id.toString('hex');
    if (env.config.backend === 'embedded') {
      const db = new DatabaseSync(embeddedPaths(env.config.home).chunkIndex);
      db.prepare('DELETE FROM chunks WHERE domain = ? AND id = ?').run(full.domainId, hex);
      db.close();
    } else {
      await createClients().ddb.send(new DeleteCommand({ TableName: env.config.chunkTable, Key: { pk: `${full.domainId}#${hex}` } }));
    }
    expect((await env.deps.index.lookup(full.domainId, [hex])).size).toBe(0);
    const r = await check('p-index');
    expect(r.ok).toBe(false);
    expect(r.damage.length).toBeGreaterThan(0);
    for (const d of r.damage) {
      expect(d).toMatchObject({ kind: 'chunk-not-indexed', chunkIds: [hex] });
      expect(d.pack).toBeUndefined();
      expect(d.blocks!.length).toBeGreaterThan(0);
    }
    expect(backupsNamed(r).has(full.backupId)).toBe(true);
  });

  it('finds a damaged pack header, a damaged manifest and a missing one', async () => {
    const { full, incr } = await twoBackups('p-meta', 5);
    const pack = await packOf(full);
    const body = await env.backend.objects.get(pack.key);
    body[body.length - 20] = body[body.length - 20]! ^ 0x01; // inside the sealed header's tag
    await env.backend.objects.put(pack.key, body);

    const seg1 = manifestKey(incr.manifestPrefix, 1);
    const manifest = await env.backend.objects.get(seg1);
    manifest[manifest.length - 1] = manifest[manifest.length - 1]! ^ 0x80;
    await env.backend.objects.put(seg1, manifest);
    await env.deps.store.delete([manifestKey(full.manifestPrefix, 3)]);

    const r = await check('p-meta');
    expect(r.ok).toBe(false);
    const header = r.damage.filter((d) => d.kind === 'pack-header');
    expect(header.length).toBeGreaterThan(0);
    expect(header.every((d) => d.pack === pack.key && /does not verify/.test(d.what))).toBe(true);
    expect(r.damage).toContainEqual(expect.objectContaining({ kind: 'manifest-invalid', backupId: incr.backupId, segment: 1, blocks: [[8, 15]] }));
    expect(r.damage).toContainEqual(expect.objectContaining({ kind: 'manifest-missing', backupId: full.backupId, segment: 3, blocks: [[24, 24]] }));
    expect(r.manifests).toBe(6);
    expect(r.damagedBackups).toBe(2);
  });

  it('checks every project it finds in the store when none is named', async () => {
    const r = await checkRepository({ engine: env.deps, backups: env.stores.backups }, {});
    expect(r.projects).toBeGreaterThanOrEqual(5);
    expect(r.ok).toBe(false);
    expect(new Set(r.damage.map((d) => d.projectId))).toEqual(new Set(['p-gone', 'p-index', 'p-meta']));
    expect(r.damage.every((d) => d.backupId && d.blocks?.length)).toBe(true);
    expect(BLOCK).toBe(env.deps.config.blockSize);
  });

  it('the scheduled run publishes one check notification per project, failure where damage was found', async () => {
    const sent: Notification[] = [];
    const projects = ['p-clean', 'p-flip', 'p-gone'];
    const result = await checkRunStep(
      { engine: env.deps, backups: env.stores.backups, notifier: { publish: async (n) => void sent.push(n) } },
      { projectIds: projects, readDataPercent: 100 },
    );
    expect(result).toMatchObject({ projects: 3, damagedProjects: ['p-flip', 'p-gone'], skipped: [], backups: 6 });
    expect(sent.map((n) => [n.projectId, n.event, n.status])).toEqual([
      ['p-clean', 'check', 'success'],
      ['p-flip', 'check', 'failure'],
      ['p-gone', 'check', 'failure'],
    ]);
    expect(sent[0]!.subject).toBe('OpenVBS: Integrity check succeeded');
    expect(sent[1]!.text).toMatch(/Damage 1: +chunk-data, backup [0-9a-f-]+, segment \d+, blocks [\d,-]+, pack packs\//);
    expect(sent[2]!.details.fail_reason).toMatch(/^damage found in \d backup\(s\)/);
    // Out of time: the run stops between projects and names the ones it did not reach.
    const late = await checkRunStep({ engine: env.deps, backups: env.stores.backups }, { projectIds: projects }, () => 30_000);
    expect(late).toMatchObject({ projects: 0, skipped: projects });
  });

  it('check-run, the Lambda handler, runs it on the process runtime and refuses a bad event', async () => {
    installProcessRuntime(env.runtime);
    try {
      await expect(checkRun({ readDataPercent: 150 })).rejects.toThrow(/check-run/);
      const result = await checkRun({ projectIds: ['p-clean', 'p-index'], seed: 'x' });
      expect(result).toMatchObject({ projects: 2, damagedProjects: ['p-index'] });
      expect(result.damage).toBeGreaterThan(0);
    } finally {
      installProcessRuntime(undefined);
    }
  });
});

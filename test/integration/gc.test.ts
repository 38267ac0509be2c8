// Garbage collection on both backends (docs/format.md, "Garbage collection"): what it frees, that every
// remaining backup restores bit-exact, that a repack keeps every live chunk readable, and the interleavings:
// GC run (with the clock moved past the margin each time, the worst case for a backup) after prepare,
// between segments, before commit, between a segment's index lookup and its manifest write, and right after
// a segment read its parent's manifest, with the parent deleted just before; each backup then commits and
// restores bit-exact, GC runs on, and it still does.
import { randomBytes } from 'node:crypto';
import { copyFile, open } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupSegment, commitBackup, prepareBackup, runBackup } from '../../lib/engine/backup.ts';
import type { EngineDeps } from '../../lib/engine/engine.ts';
import { DAY_MS, runGc } from '../../lib/engine/gc.ts';
import type { GcDeps, GcReport } from '../../lib/engine/gc.ts';
import { isIndexMaintenance } from '../../lib/engine/gc.ts';
import { decodeManifest, manifestKey } from '../../lib/engine/manifest.ts';
import { readPackHeader } from '../../lib/engine/pack.ts';
import type { BackupRecord, ChunkIndex, ChunkLocation, ObjectStore } from '../../lib/engine/ports.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import { ManualClock } from '../../lib/util/clock.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../support/disk-image.ts';
import { createEngineEnv } from '../support/engine-env.ts';
import type { EngineEnv } from '../support/engine-env.ts';
import { BACKENDS } from '../support/runtime-env.ts';

const BLOCK = 512 * 1024;
const SIZE = 24 * BLOCK + 4321; // 25 blocks: 4 segments of 8 blocks (the last short)
// A pack holds at most its target: two sealed random blocks (just over 1 MiB), not three.
const ENGINE = { segmentBlocks: 8, packTargetBytes: 1.5 * 1024 * 1024 };
/** Mostly data that shares nothing between images of different seeds. */
const RANDOM_MIX = { zero: 0.25, text: 0, random: 0.75, copy: 0 };
const MARGIN = DAY_MS;
const P = 'p1';

describe.each(BACKENDS)('garbage collection (%s backend)', (backend) => {
  let env: EngineEnv;
  let clock: ManualClock;
  let gc: GcDeps;
  let volumeSeq = 0;

  beforeAll(async () => {
    env = await createEngineEnv(backend, { engine: ENGINE, workers: 0 });
    clock = new ManualClock('2030-01-01T00:00:00Z');
    gc = { store: env.backend.objects, index: env.backend.chunkIndex, backups: env.stores.backups, gcQueue: env.stores.gcQueue, domains: env.deps.domains };
  });
  afterAll(async () => {
    await env?.close();
  });

  /** One GC run at the clock's time, then the clock moves past the margin. */
  async function gcRun(): Promise<GcReport> {
    const report = await runGc(gc, { clock, marginMs: MARGIN, repackBelow: 0.9, packTargetBytes: ENGINE.packTargetBytes });
    expect(report.ran).toBe(true);
    clock.advance(MARGIN + 1);
    return report;
  }

  /** Enough runs for anything unreferenced to be marked, its entry deleted, its pack noted and deleted. */
  async function gcToQuiet(): Promise<GcReport[]> {
    return [await gcRun(), await gcRun(), await gcRun()];
  }

  async function newVolume(seed: number, mix = RANDOM_MIX): Promise<{ id: string; path: string }> {
    const id = `vol-${++volumeSeq}`;
    const path = env.path(`${id}.img`);
    await writeDiskImage(path, SIZE, seed, mix);
    env.addVolume(P, id, { path });
    return { id, path };
  }

  async function deleteBackup(rec: BackupRecord): Promise<void> {
    const deleting = await env.stores.backups.updateBackup(P, rec.backupId, { status: 'deleting' }, ['available', 'error']);
    expect(await env.stores.gcQueue.removeBackupAndQueue(deleting)).toBe(true);
  }

  async function expectRestores(rec: BackupRecord, sha: string): Promise<void> {
    const target = `restore-${rec.backupId}-${volumeSeq++}`;
    env.addVolume(P, target, { path: env.path(`${target}.img`) });
    await restoreBackup(env.deps, { projectId: P, backupId: rec.backupId, targetVolumeId: target });
    expect(await sha256File(env.path(`${target}.img`), rec.sizeBytes)).toBe(sha);
  }

  async function storedBytes(prefix = ''): Promise<number> {
    let n = 0;
    for await (const o of env.backend.objects.list(prefix)) n += o.size;
    return n;
  }

  async function objectSizes(prefix: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for await (const o of env.backend.objects.list(prefix)) out.set(o.key, o.size);
    return out;
  }

  it('frees exactly what only the deleted backups referenced, and every other backup restores', async () => {
    const a = await newVolume(11);
    const b = await newVolume(12);
    const before = await objectSizes('');
    const backupA = await runBackup(env.deps, { projectId: P, volumeId: a.id, name: 'a' });
    const afterA = await objectSizes('');
    const backupB = await runBackup(env.deps, { projectId: P, volumeId: b.id, name: 'b' });
    await gcToQuiet(); // earlier tests' garbage, if any, goes first
    const onlyA = [...afterA].filter(([key]) => !before.has(key)).reduce((n, [, size]) => n + size, 0);
    expect(onlyA).toBeGreaterThan(0);
    const total = await storedBytes();

    await deleteBackup(backupA);
    const reports = await gcToQuiet();
    expect(await storedBytes()).toBe(total - onlyA);
    const freed = reports.reduce((n, r) => n + r.bytesFreed, 0);
    expect(freed).toBe(onlyA);
    expect(reports.reduce((n, r) => n + r.manifestsDeleted, 0)).toBe(backupA.segmentCount);
    expect(reports.reduce((n, r) => n + r.indexEntriesDeleted, 0)).toBe(backupA.stats!.newChunks);
    expect(reports[0]!.backupsDrained).toBe(1);
    expect(await env.stores.gcQueue.list()).toEqual([]);
    await expectRestores(backupB, await sha256File(b.path));
  });

  it('repacks packs that fell mostly empty: only live chunks stay stored, every one readable', async () => {
    // One-block extents, two to a pack; every other block then rewritten whole: half of each old pack dies.
    const v = await newVolume(21, { zero: 0, text: 0, random: 1, copy: 0 });
    const first = await runBackup(env.deps, { projectId: P, volumeId: v.id, name: 'first', extentBlocks: 1 });
    const firstSha = await sha256File(v.path);
    const fh = await open(v.path, 'r+');
    for (let b = 0; b < 24; b += 2) await fh.write(randomBytes(BLOCK), 0, BLOCK, b * BLOCK);
    await fh.close();
    const second = await runBackup(env.deps, { projectId: P, volumeId: v.id, name: 'second', extentBlocks: 1 });
    expect(second.parentId).toBe(first.backupId);
    expect(second.stats!.reusedFromParent).toBeGreaterThan(0);
    const beforeDelete = await storedBytes();
    await deleteBackup(first);
    const reports = await gcToQuiet();
    expect(reports.reduce((n, r) => n + r.packsRepacked, 0)).toBeGreaterThan(0);

    // Every pack holds only chunks some remaining backup names, each readable where the index says.
    const domain = await env.deps.domains.forBackup(P, second.kmsKeyId, second.domainId);
    const live = new Set<string>();
    for (const rec of await env.stores.backups.listBackups(P)) {
      if (rec.domainId !== domain.domainId) continue;
      for (let s = 0; s < rec.segmentCount; s++) {
        const m = decodeManifest(domain.keys, rec.backupId, s, await env.backend.objects.get(manifestKey(rec.manifestPrefix, s)));
        const ids = m.version === 1 ? m.ids : m.chunkIds;
        for (let at = 0; at < ids.length; at += 32) live.add(ids.subarray(at, at + 32).toString('hex'));
      }
    }
    const stored = new Set<string>();
    for (const [key, size] of await objectSizes(`packs/${domain.domainId}/`)) {
      for (const e of await readPackHeader(env.backend.objects, domain.keys, key, size)) stored.add(e.id.toString('hex'));
    }
    expect([...stored].sort()).toEqual([...live].sort());
    const found = await env.backend.chunkIndex.lookup(domain.domainId, [...live]);
    expect(found.size).toBe(live.size);
    await expectRestores(second, await sha256File(v.path));
    expect(firstSha).not.toBe(await sha256File(v.path));
    // The dead half is gone; what the repack wrote is the live half it copied.
    const freed = reports.reduce((n, r) => n + r.bytesFreed - r.bytesWritten, 0);
    expect(await storedBytes()).toBe(beforeDelete - freed);
    expect(freed).toBeGreaterThan(12 * BLOCK);
  });

  it('a backup deduplicating against chunks that only a deleted backup referenced stores them again once marked', async () => {
    const x = await newVolume(31);
    const xBackup = await runBackup(env.deps, { projectId: P, volumeId: x.id, name: 'x' });
    await deleteBackup(xBackup);
    const marking = await gcRun(); // marks every chunk of x
    expect(marking.entriesMarked).toBeGreaterThanOrEqual(xBackup.stats!.newChunks);
    const y = { id: `vol-${++volumeSeq}`, path: env.path(`copy-${volumeSeq}.img`) };
    await copyFile(x.path, y.path);
    env.addVolume(P, y.id, { path: y.path });
    const yBackup = await runBackup(env.deps, { projectId: P, volumeId: y.id, name: 'y' });
    expect(yBackup.stats!.dedupHits).toBe(0); // every marked entry was a miss
    expect(yBackup.stats!.newChunks).toBe(xBackup.stats!.newChunks);
    await gcToQuiet();
    await expectRestores(yBackup, await sha256File(y.path));
  });

  /** Where GC runs during the child's life. */
  type Stage = 'after prepare' | 'between segments' | 'before commit' | 'after the parent manifest is read' | 'between lookup and manifest';

  const STAGES: Stage[] = ['after prepare', 'between segments', 'before commit', 'after the parent manifest is read', 'between lookup and manifest'];

  describe.each(STAGES)('GC %s', (stage) => {
    it.each([false, true])('with the parent deleted just before: %s', async (deleteParent) => {
      const v = await newVolume(40 + volumeSeq);
      const parent = await runBackup(env.deps, { projectId: P, volumeId: v.id, name: 'parent' });
      const parentSha = await sha256File(v.path);
      await scatterWrites(v.path, SIZE, BLOCK, 0.3, 40 + volumeSeq);
      // A twin of the child (the same changes on the same parent), deleted: its new sub-chunks are the ones
      // the child looks up, marked garbage by then.
      const twinBackup = await runBackup(env.deps, { projectId: P, volumeId: v.id, name: 'twin' });
      expect(twinBackup.parentId).toBe(parent.backupId);
      expect(twinBackup.stats!.newChunks).toBeGreaterThan(0);
      const childSha = await sha256File(v.path);

      let parentDeleted = false;
      let s = 0;
      const interfere = async () => {
        if (deleteParent && !parentDeleted) {
          parentDeleted = true;
          await deleteBackup(parent);
        }
        await gcToQuiet();
      };
      // The hooks that need to sit inside a segment: the store (parent manifest read) and the index (lookup).
      let armed: Stage | undefined;
      const deps: EngineDeps = {
        ...env.deps,
        store: hookedStore(env.deps.store, async (key) => {
          if (armed === 'after the parent manifest is read' && key.startsWith(parent.manifestPrefix)) {
            armed = undefined;
            await interfere();
          }
        }),
        index: hookedIndex(env.deps.index, async (found) => {
          for (const at of found.values()) if (at.marked !== undefined) lookedUpMarked++;
          if (armed === 'between lookup and manifest') {
            armed = undefined;
            // Within a segment step, lookup to manifest write takes less than the margin: GC runs (deleting what
            // was marked a margin ago, which the lookup just met), and time does not pass the margin again.
            if (deleteParent && !parentDeleted) {
              parentDeleted = true;
              await deleteBackup(parent);
            }
            const r = await runGc(gc, { clock, marginMs: MARGIN });
            if (s === 0) expect(r.indexEntriesDeleted).toBeGreaterThan(0);
            await runGc(gc, { clock, marginMs: MARGIN });
          }
        }),
      };
      // The twin's chunks are the child's new ones: deleted and marked (with the margin passed), they are
      // garbage the child's lookups meet, and that any later run may delete.
      await deleteBackup(twinBackup);
      expect((await gcRun()).entriesMarked).toBeGreaterThan(0);

      const child = await prepareBackup(deps, { projectId: P, volumeId: v.id, name: 'child' });
      expect(child.parentId).toBe(parent.backupId);
      let lookedUpMarked = 0;
      if (stage === 'after prepare') await interfere();
      for (s = 0; s < child.segmentCount; s++) {
        if (stage === 'between segments' && s === 1) await interfere();
        if (stage === 'after the parent manifest is read' || stage === 'between lookup and manifest') armed = stage;
        await backupSegment(deps, P, child.backupId, s);
      }
      if (stage === 'before commit') await interfere();
      const committed = await commitBackup(deps, P, child.backupId);
      expect(committed.status).toBe('available');
      // The child met the twin's marked entries (unless GC had deleted them all before its first lookups).
      if (stage !== 'after prepare' && stage !== 'after the parent manifest is read') expect(lookedUpMarked).toBeGreaterThan(0);
      if (!parentDeleted && deleteParent) await deleteBackup(parent);
      await gcToQuiet();
      await expectRestores(committed, childSha);
      if (!deleteParent) await expectRestores(parent, parentSha);
      // Every chunk the child names is in the index and its pack is stored.
      const domain = await env.deps.domains.forBackup(P, committed.kmsKeyId, committed.domainId);
      for (let s = 0; s < committed.segmentCount; s++) {
        const m = decodeManifest(domain.keys, committed.backupId, s, await env.backend.objects.get(manifestKey(committed.manifestPrefix, s)));
        const ids = m.version === 1 ? [] : Array.from({ length: m.chunkLengths.length }, (_, c) => m.chunkIds.subarray(c * 32, (c + 1) * 32).toString('hex'));
        const found = await env.backend.chunkIndex.lookup(domain.domainId, ids);
        expect(found.size).toBe(ids.length);
        for (const at of found.values()) expect(await env.backend.objects.exists(at.pack)).toBe(true);
      }
    });
  });

  it('a second run waits while one holds the lease', async () => {
    expect(isIndexMaintenance(env.backend.chunkIndex)).toBe(true);
    const now = clock.now().getTime();
    expect(await env.stores.gcQueue.acquireLease('someone', now, now + 60_000)).toBe(true);
    expect((await runGc(gc, { clock })).ran).toBe(false);
    await env.stores.gcQueue.releaseLease('someone');
    expect((await runGc(gc, { clock })).ran).toBe(true);
  });
});

/** An object store that awaits `before(key)` before each whole-object read. */
function hookedStore(store: ObjectStore, before: (key: string) => Promise<void>): ObjectStore {
  return {
    put: (k, b) => store.put(k, b),
    putIfAbsent: (k, b) => store.putIfAbsent(k, b),
    get: async (k) => {
      const got = await store.get(k);
      await before(k);
      return got;
    },
    getRange: (k, s, l, into) => store.getRange(k, s, l, into),
    exists: (k) => store.exists(k),
    list: (p) => store.list(p),
    delete: (keys) => store.delete(keys),
  };
}

/** A chunk index that awaits `after(found)` after each lookup, before answering. */
function hookedIndex(index: ChunkIndex, after: (found: Map<string, ChunkLocation>) => Promise<void>): ChunkIndex {
  return {
    lookup: async (d, ids) => {
      const found = await index.lookup(d, ids);
      await after(found);
      return found;
    },
    record: (d, entries) => index.record(d, entries),
  };
}

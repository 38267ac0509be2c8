// Garbage collection: mark and sweep over the manifests of every backup the catalog holds, lock-free, made
// safe by a mark that writers honour and a time margin (docs/format.md, "Garbage collection", has the rules
// and the proof). One run, per key domain:
//   roots  the manifests of every backup item of the domain (any status) and of every queued (deleted) backup
//          that a `creating` backup names as its parent; the queue is read before the backups are listed
//   mark   the roots' chunk ids make the live set (8 bytes per distinct id, in passes over id ranges when the
//          set would outgrow its budget)
//   sweep  each index entry: live and marked -> unmark; dead and unmarked -> mark with this run's time; dead and
//          marked at least `marginMs` ago -> delete, on condition the mark is unchanged (a record clears it)
//   packs  a pack no entry names is noted; one still unnamed in a run at least `marginMs` after the note is
//          deleted. A pack whose named bytes fall below `repackBelow` of its size has those chunks copied into
//          new packs and their entries moved (on condition they still name it); the old pack then goes as above
//   queue  a queued backup that no `creating` backup names as parent loses its manifests, then its entry
import { randomUUID } from 'node:crypto';
import type { GcQueue, GcQueueEntry } from '../catalog/gc-queue.ts';
import type { BackupStore } from '../catalog/backups.ts';
import { systemClock } from '../util/clock.ts';
import type { Clock } from '../util/clock.ts';
import { mapLimit } from '../util/concurrency.ts';
import { CHUNK_ID_BYTES } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { IndexEntry, IndexMaintenance } from './gc-index.ts';
import { LiveSet, LiveSetFull } from './gc-live-set.ts';
import type { KeyDomains } from './key-domains.ts';
import { ZERO_ID, decodeManifest, manifestKey } from './manifest.ts';
import { finishPack, newPackKey } from './pack.ts';
import type { PackEntry } from './pack.ts';
import type { BackupStatus, ChunkIndex, ChunkLocation, KeyDomainRecord, ObjectStore } from './ports.ts';
import { ObjectNotFoundError } from './ports.ts';

export const DAY_MS = 24 * 3600_000;

export interface GcOptions {
  /**
   * M: how long a mark (or an unnamed pack's note) must stand before its entry (pack) may go. Longer than any
   * segment step runs between an index lookup and its manifest write, and than a restore step holds a
   * location it looked up, plus clock skew between writers (docs/format.md). Default one day.
   */
  marginMs?: number;
  /** Packs whose named bytes are below this fraction of their size are repacked. Default 0.5. */
  repackBelow?: number;
  /** Most bytes of live chunks one run copies while repacking. Default 1 GiB. */
  repackBudgetBytes?: number;
  /** Size of the packs a repack writes. Default 16 MiB. */
  packTargetBytes?: number;
  /** Most distinct live ids a pass holds (8 bytes each); more take several passes. Default 16 Mi (128 MiB). */
  liveIdBudget?: number;
  /** How long the run's lease keeps other runs off. Default 30 minutes. */
  leaseMs?: number;
  clock?: Clock;
  /** Manifests read at once. */
  concurrency?: number;
}

export interface GcDeps {
  store: ObjectStore;
  index: ChunkIndex;
  backups: BackupStore;
  gcQueue: GcQueue;
  domains: KeyDomains;
}

export interface GcReport {
  /** The run's time: the mark it sets, and the one margins are measured from. */
  startedAt: string;
  /** False when another run held the lease (nothing was done). */
  ran: boolean;
  domains: number;
  /** Backups whose manifests were roots (items of any status, and queued parents of creating backups). */
  rootBackups: number;
  manifestsRead: number;
  /** Distinct live chunk ids (summed over passes and domains). */
  liveChunks: number;
  /** Passes over id ranges (one per domain unless a live set outgrew its budget). */
  passes: number;
  indexEntries: number;
  entriesMarked: number;
  entriesUnmarked: number;
  indexEntriesDeleted: number;
  /** Packs newly found unnamed (deleted by a run at least the margin later if still unnamed). */
  packsNoted: number;
  packsDeleted: number;
  packsRepacked: number;
  /** Packs the repack wrote, and their bytes. */
  packsWritten: number;
  bytesWritten: number;
  /** Queued backups whose manifests were deleted (their queue entries removed). */
  backupsDrained: number;
  manifestsDeleted: number;
  /** Bytes of the packs and manifests deleted. */
  bytesFreed: number;
  /** Largest live set held at once, in bytes. */
  liveSetBytes: number;
  markMs: number;
  sweepMs: number;
  repackMs: number;
}

function emptyReport(startedAt: Date): GcReport {
  return {
    startedAt: startedAt.toISOString(),
    ran: false,
    domains: 0,
    rootBackups: 0,
    manifestsRead: 0,
    liveChunks: 0,
    passes: 0,
    indexEntries: 0,
    entriesMarked: 0,
    entriesUnmarked: 0,
    indexEntriesDeleted: 0,
    packsNoted: 0,
    packsDeleted: 0,
    packsRepacked: 0,
    packsWritten: 0,
    bytesWritten: 0,
    backupsDrained: 0,
    manifestsDeleted: 0,
    bytesFreed: 0,
    liveSetBytes: 0,
    markMs: 0,
    sweepMs: 0,
    repackMs: 0,
  };
}

/** A backup whose manifests are roots. */
interface Root {
  backupId: string;
  manifestPrefix: string;
  segmentCount: number;
  /** Statuses whose manifests may be missing or partial (not committed); for the others a missing one is an error. */
  partial: boolean;
}

const PARTIAL: readonly BackupStatus[] = ['creating', 'error'];

export function isIndexMaintenance(index: ChunkIndex): index is ChunkIndex & IndexMaintenance {
  return typeof (index as Partial<IndexMaintenance>).scanDomain === 'function';
}

/** Runs one collection over every key domain. */
export async function runGc(deps: GcDeps, options: GcOptions = {}): Promise<GcReport> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const report = emptyReport(started);
  const owner = randomUUID();
  const T = started.getTime();
  if (!(await deps.gcQueue.acquireLease(owner, T, T + (options.leaseMs ?? 30 * 60_000)))) return report;
  report.ran = true;
  try {
    // The queue first, then the backups (per domain, below): a backup that reused a queued backup's manifest
    // existed before that backup's deletion, so it is in the listing (docs/format.md).
    const queue = await deps.gcQueue.list();
    const domains = await deps.gcQueue.domains(queue.map((q) => q.projectId));
    for (const domain of domains) {
      await collectDomain(deps, options, T, domain, queue.filter((q) => q.domainId === domain.domainId), report);
      report.domains++;
    }
  } finally {
    await deps.gcQueue.releaseLease(owner);
  }
  return report;
}

async function collectDomain(deps: GcDeps, options: GcOptions, T: number, domain: KeyDomainRecord, queued: GcQueueEntry[], report: GcReport): Promise<void> {
  const index = deps.index;
  if (!isIndexMaintenance(index)) throw new Error('this chunk index cannot be garbage collected (no scan or conditional writes)');
  const margin = options.marginMs ?? DAY_MS;
  const keys = (await deps.domains.forBackup(domain.projectId, domain.kmsKeyId, domain.domainId)).keys;

  const backups = (await deps.backups.listBackups(domain.projectId)).filter((b) => b.domainId === domain.domainId);
  const parentsInUse = new Set(backups.filter((b) => b.status === 'creating' && b.parentId).map((b) => b.parentId!));
  const roots: Root[] = backups.map((b) => ({ backupId: b.backupId, manifestPrefix: b.manifestPrefix, segmentCount: b.segmentCount, partial: PARTIAL.includes(b.status) }));
  const drain: GcQueueEntry[] = [];
  for (const q of queued) {
    if (parentsInUse.has(q.backupId)) roots.push({ backupId: q.backupId, manifestPrefix: q.manifestPrefix, segmentCount: q.segmentCount, partial: false });
    else drain.push(q);
  }
  report.rootBackups += roots.length;

  // Named bytes per pack, of the entries that outlive this run.
  const named = new Map<string, { bytes: number; entries: number }>();
  const budget = options.liveIdBudget ?? 16 * 1024 * 1024;
  let passes = 1;
  for (let pass = 0; pass < passes; ) {
    const lo = (pass * 256) / passes;
    const hi = ((pass + 1) * 256) / passes;
    const markStart = performance.now();
    let live: LiveSet;
    try {
      live = await liveSet(deps, keys, roots, lo, hi, budget, options.concurrency ?? 8, report);
    } catch (err) {
      if (!(err instanceof LiveSetFull) || passes >= 256) throw err;
      // Split: this pass becomes two, the ones after it too.
      passes *= 2;
      pass *= 2;
      continue;
    }
    report.markMs += performance.now() - markStart;
    report.liveChunks += live.size;
    report.liveSetBytes = Math.max(report.liveSetBytes, live.bytes);
    report.passes++;
    const sweepStart = performance.now();
    const range = { from: hexByte(lo), ...(hi < 256 ? { to: hexByte(hi) } : {}) };
    for await (const page of index.scanDomain(domain.domainId, range)) {
      await sweepPage(index, domain.domainId, page, live, T, margin, named, report);
    }
    report.sweepMs += performance.now() - sweepStart;
    pass++;
  }

  const sweepStart = performance.now();
  const repack = await sweepPacks(deps, options, T, margin, domain.domainId, named, report);
  report.sweepMs += performance.now() - sweepStart;
  if (repack.length) {
    const repackStart = performance.now();
    await repackPacks(deps, index, options, T, domain.domainId, keys, repack, report);
    report.repackMs += performance.now() - repackStart;
  }

  for (const q of drain) {
    const objects: Array<{ key: string; size: number }> = [];
    for await (const o of deps.store.list(q.manifestPrefix)) objects.push(o);
    if (objects.length) await deps.store.delete(objects.map((o) => o.key));
    report.manifestsDeleted += objects.length;
    report.bytesFreed += objects.reduce((n, o) => n + o.size, 0);
    await deps.gcQueue.remove(q);
    report.backupsDrained++;
  }
}

const hexByte = (b: number) => b.toString(16).padStart(2, '0');

/** The ids of every root manifest whose first byte is in [lo, hi). */
async function liveSet(deps: GcDeps, keys: DomainKeys, roots: Root[], lo: number, hi: number, budget: number, concurrency: number, report: GcReport): Promise<LiveSet> {
  const live = new LiveSet(budget);
  const add = (ids: Buffer) => {
    for (let at = 0; at < ids.length; at += CHUNK_ID_BYTES) {
      const first = ids[at]!;
      if (first < lo || first >= hi) continue;
      if (first === 0 && ids.compare(ZERO_ID, 0, CHUNK_ID_BYTES, at, at + CHUNK_ID_BYTES) === 0) continue; // a version-1 zero block
      live.add(ids, at);
    }
  };
  for (const root of roots) {
    await mapLimit(
      Array.from({ length: root.segmentCount }, (_, s) => s),
      concurrency,
      async (segment) => {
        let stored: Buffer;
        try {
          stored = await deps.store.get(manifestKey(root.manifestPrefix, segment));
        } catch (err) {
          // A backup being made, or one that failed, lacks the manifests of its unfinished segments.
          if (err instanceof ObjectNotFoundError && root.partial) return;
          throw err;
        }
        const m = decodeManifest(keys, root.backupId, segment, stored);
        report.manifestsRead++;
        add(m.version === 1 ? m.ids : m.chunkIds);
      },
    );
  }
  return live;
}

async function sweepPage(
  index: IndexMaintenance,
  domainId: string,
  page: IndexEntry[],
  live: LiveSet,
  T: number,
  margin: number,
  named: Map<string, { bytes: number; entries: number }>,
  report: GcReport,
): Promise<void> {
  const toMark: Array<{ id: string; location: ChunkLocation }> = [];
  const toUnmark: Array<{ id: string; mark: number }> = [];
  const toDelete: Array<{ id: string; mark: number }> = [];
  for (const e of page) {
    report.indexEntries++;
    let stays = true;
    if (live.hasHex(e.id)) {
      if (e.mark !== undefined) toUnmark.push({ id: e.id, mark: e.mark });
    } else if (e.mark === undefined) toMark.push({ id: e.id, location: e });
    else if (e.mark <= T - margin) {
      toDelete.push({ id: e.id, mark: e.mark });
      stays = false;
    }
    if (stays) {
      const p = named.get(e.pack) ?? { bytes: 0, entries: 0 };
      p.bytes += e.length;
      p.entries++;
      named.set(e.pack, p);
    }
  }
  if (toUnmark.length) report.entriesUnmarked += await index.unmarkEntries(domainId, toUnmark);
  if (toMark.length) report.entriesMarked += await index.markEntries(domainId, toMark, T);
  if (toDelete.length) {
    const deleted = await index.deleteEntries(domainId, toDelete);
    report.indexEntriesDeleted += deleted;
    // Some delete did not happen (a backup rewrote the entry, or another run unmarked it): count them all as
    // still naming their packs, so no pack is taken for unnamed on a guess.
    if (deleted < toDelete.length) {
      for (const d of toDelete) {
        const e = page.find((x) => x.id === d.id)!;
        const p = named.get(e.pack) ?? { bytes: 0, entries: 0 };
        p.bytes += e.length;
        p.entries++;
        named.set(e.pack, p);
      }
    }
  }
}

/** Notes and deletes unnamed packs; returns the packs to repack (fullest last). */
async function sweepPacks(
  deps: GcDeps,
  options: GcOptions,
  T: number,
  margin: number,
  domainId: string,
  named: Map<string, { bytes: number; entries: number }>,
  report: GcReport,
): Promise<Array<{ key: string; size: number }>> {
  const noted = await deps.gcQueue.unnamedPacks(domainId);
  const repackBelow = options.repackBelow ?? 0.5;
  const candidates: Array<{ key: string; size: number; fraction: number }> = [];
  const doomed: Array<{ key: string; size: number }> = [];
  for await (const o of deps.store.list(`packs/${domainId}/`)) {
    const use = named.get(o.key);
    const since = noted.get(o.key);
    noted.delete(o.key);
    if (use) {
      if (since !== undefined) await deps.gcQueue.forgetUnnamed(domainId, o.key);
      const fraction = use.bytes / o.size;
      if (fraction < repackBelow) candidates.push({ key: o.key, size: o.size, fraction });
    } else if (since === undefined) {
      await deps.gcQueue.noteUnnamed(domainId, o.key, T);
      report.packsNoted++;
    } else if (since <= T - margin) doomed.push(o);
  }
  if (doomed.length) {
    await deps.store.delete(doomed.map((o) => o.key));
    for (const o of doomed) await deps.gcQueue.forgetUnnamed(domainId, o.key);
    report.packsDeleted += doomed.length;
    report.bytesFreed += doomed.reduce((n, o) => n + o.size, 0);
  }
  // Notes of packs that are gone (deleted by hand, or a run that stopped after deleting them).
  for (const key of noted.keys()) await deps.gcQueue.forgetUnnamed(domainId, key);

  candidates.sort((a, b) => a.fraction - b.fraction);
  const budget = options.repackBudgetBytes ?? 1024 * 1024 * 1024;
  const chosen: Array<{ key: string; size: number }> = [];
  let bytes = 0;
  for (const c of candidates) {
    const liveBytes = named.get(c.key)!.bytes;
    if (bytes + liveBytes > budget && chosen.length) break;
    bytes += liveBytes;
    chosen.push(c);
  }
  return chosen;
}

/**
 * Copies the chunks the index still places in `packs` into new packs (sealed chunks are copied as they are:
 * their authentication binds the chunk id, not the pack), then moves each entry on condition it still names
 * the old place. The old packs are noted unnamed; a run at least the margin later deletes them.
 */
async function repackPacks(
  deps: GcDeps,
  index: ChunkIndex & IndexMaintenance,
  options: GcOptions,
  T: number,
  domainId: string,
  keys: DomainKeys,
  packs: Array<{ key: string; size: number }>,
  report: GcReport,
): Promise<void> {
  const wanted = new Set(packs.map((p) => p.key));
  const entries = new Map<string, IndexEntry[]>();
  for await (const page of index.scanDomain(domainId)) {
    for (const e of page) if (wanted.has(e.pack)) (entries.get(e.pack) ?? entries.set(e.pack, []).get(e.pack)!).push(e);
  }
  const target = options.packTargetBytes ?? 16 * 1024 * 1024;
  let parts: Buffer[] = [];
  let headerEntries: PackEntry[] = [];
  let moves: Array<{ id: string; from: ChunkLocation; to: Omit<ChunkLocation, 'pack'> }> = [];
  let used = 0;
  const flush = async () => {
    if (!headerEntries.length) return;
    const key = newPackKey(domainId);
    const body = finishPack(keys, key, Buffer.concat(parts, used), used, headerEntries);
    await deps.store.put(key, body);
    report.packsWritten++;
    report.bytesWritten += body.length;
    await index.moveEntries(domainId, moves.map((m) => ({ id: m.id, from: m.from, to: { pack: key, ...m.to } })));
    parts = [];
    headerEntries = [];
    moves = [];
    used = 0;
  };
  for (const pack of packs) {
    const list = entries.get(pack.key) ?? [];
    const body = list.length ? await deps.store.get(pack.key) : Buffer.alloc(0);
    for (const e of list) {
      const sealed = body.subarray(e.offset, e.offset + e.length);
      if (sealed.length !== e.length) throw new Error(`pack ${pack.key} is shorter than its index entry for chunk ${e.id} says`);
      parts.push(sealed);
      headerEntries.push({ id: Buffer.from(e.id, 'hex'), offset: used, length: e.length });
      moves.push({ id: e.id, from: { pack: e.pack, offset: e.offset, length: e.length }, to: { offset: used, length: e.length } });
      used += e.length;
      if (used >= target) await flush();
    }
  }
  await flush();
  for (const pack of packs) {
    await deps.gcQueue.noteUnnamed(domainId, pack.key, T);
    report.packsRepacked++;
  }
}

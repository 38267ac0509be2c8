// Volume backup: prepare (catalog entry `creating`, parent, key domain) -> one call per segment (read,
// hash, dedup, seal, pack, manifest) -> commit (all manifests present -> `available`).
// A backup becomes `available` only in commit; anything that fails before leaves it `creating` or
// `error`, and never touches what earlier backups reference.
import { randomBytes } from 'node:crypto';
import { CHUNK_ID_BYTES, SEAL_OVERHEAD } from './chunk-codec.ts';
import type { SealOutput, Slot } from './chunk-pool.ts';
import type { EngineDeps, Progress } from './engine.ts';
import { EngineStateError } from './errors.ts';
import type { KeyDomain } from './key-domains.ts';
import { addStats, decodeManifest, emptyStats, encodeManifest, manifestKey } from './manifest.ts';
import { PackWriter } from './pack-writer.ts';
import type { BackupRecord, BackupStats } from './ports.ts';
import { mapLimit } from '../util/concurrency.ts';

export interface BackupRequest {
  projectId: string;
  volumeId: string;
  name: string;
  description?: string;
  backupId?: string;
  /** Skip the parent shortcut: every block is looked up in the index (still deduplicated). */
  forceFull?: boolean;
  extra?: Record<string, unknown>;
}

export function newBackupId(): string {
  // UUID shape, as VBS clients expect.
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function prepareBackup(deps: EngineDeps, req: BackupRequest): Promise<BackupRecord> {
  const { blockSize, segmentBlocks } = deps.config;
  const volume = await deps.volumes.describe(req.projectId, req.volumeId);
  const domain = await deps.domains.forVolume(req.projectId, volume.kmsKeyId);
  const parent = req.forceFull ? undefined : await deps.catalog.latestBackup(req.projectId, req.volumeId, 'available', domain.domainId);
  const backupId = req.backupId ?? newBackupId();
  const blocks = Math.ceil(volume.sizeBytes / blockSize);
  const now = new Date().toISOString();
  const record: BackupRecord = {
    projectId: req.projectId,
    backupId,
    volumeId: req.volumeId,
    name: req.name,
    description: req.description,
    status: 'creating',
    sizeBytes: volume.sizeBytes,
    blockSize,
    segmentBlocks,
    segmentCount: Math.max(1, Math.ceil(blocks / segmentBlocks)),
    parentId: parent?.backupId,
    domainId: domain.domainId,
    kmsKeyId: domain.kmsKeyId,
    customerKey: Boolean(volume.kmsKeyId),
    createdAt: now,
    updatedAt: now,
    manifestPrefix: `manifests/${req.projectId}/${backupId}/`,
    extra: req.extra,
  };
  await deps.catalog.createBackup(record);
  return record;
}

function segmentRange(rec: BackupRecord, segment: number) {
  const totalBlocks = Math.ceil(rec.sizeBytes / rec.blockSize);
  const firstBlock = segment * rec.segmentBlocks;
  return { firstBlock, blockCount: Math.max(0, Math.min(rec.segmentBlocks, totalBlocks - firstBlock)) };
}

async function domainOf(deps: EngineDeps, rec: BackupRecord): Promise<KeyDomain> {
  const domain = await deps.domains.forBackup(rec.projectId, rec.kmsKeyId, rec.domainId);
  deps.pool.registerDomain(domain.domainId, domain.keys);
  return domain;
}

/** The parent's chunk ids for this segment, when the parent has the same geometry. */
async function parentSegmentIds(deps: EngineDeps, rec: BackupRecord, segment: number, domain: KeyDomain): Promise<Buffer | undefined> {
  if (!rec.parentId) return undefined;
  const parent = await deps.catalog.getBackup(rec.projectId, rec.parentId);
  if (!parent || parent.status !== 'available' || parent.blockSize !== rec.blockSize || parent.segmentBlocks !== rec.segmentBlocks) return undefined;
  if (segment >= parent.segmentCount) return undefined;
  const sealed = await deps.store.get(manifestKey(parent.manifestPrefix, segment));
  return decodeManifest(domain.keys, parent.backupId, segment, sealed).ids;
}

/**
 * Backs up one segment and writes its manifest. Safe to retry: a segment whose manifest is stored is
 * not redone; one interrupted before that writes fresh packs (the old ones become garbage for GC).
 */
export async function backupSegment(deps: EngineDeps, projectId: string, backupId: string, segment: number, onProgress?: (blocks: number) => void): Promise<BackupStats> {
  const { config, pool, store, index, volumes } = deps;
  const rec = await deps.catalog.getBackup(projectId, backupId);
  if (!rec) throw new EngineStateError(`backup ${backupId} not found`);
  if (rec.status !== 'creating') throw new EngineStateError(`backup ${backupId} is ${rec.status}, not creating`);
  if (segment < 0 || segment >= rec.segmentCount) throw new EngineStateError(`backup ${backupId} has no segment ${segment}`);
  const domain = await domainOf(deps, rec);
  const manifestObject = manifestKey(rec.manifestPrefix, segment);
  // A segment whose manifest is stored is done: a resumed or retried job does not read it again.
  if (await store.exists(manifestObject)) return decodeManifest(domain.keys, backupId, segment, await store.get(manifestObject)).stats;
  const { firstBlock, blockCount } = segmentRange(rec, segment);
  const parentIds = await parentSegmentIds(deps, rec, segment, domain);
  const ids = Buffer.alloc(blockCount * CHUNK_ID_BYTES);
  const stats = emptyStats();
  stats.blocks = blockCount;
  const packs = new PackWriter(store, index, domain, config.packTargetBytes, rec.blockSize + SEAL_OVERHEAD, config.uploadConcurrency);
  const claimed = new Set<string>();
  const bs = rec.blockSize;

  /** Decides for each block of a batch (held in `slot`) whether it is zero, reused, found, or new. */
  const classify = async (batchFirst: number, slot: Slot, length: number) => {
    const digest = await pool.digest(domain.domainId, slot, length, bs);
    const candidates: number[] = [];
    const candidateHex: string[] = [];
    for (let j = 0; j < digest.zero.length; j++) {
      if (digest.zero[j]) {
        stats.zeroBlocks++;
        continue;
      }
      const id = digest.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES);
      const at = (batchFirst + j) * CHUNK_ID_BYTES;
      ids.set(id, at);
      stats.chunkCount++;
      stats.logicalBytes += Math.min(bs, length - j * bs);
      if (parentIds?.subarray(at, at + CHUNK_ID_BYTES).equals(id)) {
        stats.reusedFromParent++;
        continue;
      }
      const hex = id.toString('hex');
      if (claimed.has(hex)) {
        stats.dedupHits++; // an earlier block of this segment stores (or found) it
        continue;
      }
      claimed.add(hex);
      candidates.push(j);
      candidateHex.push(hex);
    }
    const known = candidates.length ? await index.lookup(domain.domainId, candidateHex) : new Map();
    const toStore: number[] = [];
    candidates.forEach((j, k) => {
      if (known.has(candidateHex[k]!)) stats.dedupHits++;
      else toStore.push(j);
    });
    return { toStore, ids: digest.ids };
  };

  const processBatch = async (batchFirst: number, slot: Slot, length: number) => {
    let sealed: SealOutput | undefined;
    let storeIds = Buffer.alloc(0);
    try {
      const { toStore, ids: batchIds } = await classify(batchFirst, slot, length);
      if (toStore.length) {
        storeIds = Buffer.allocUnsafe(toStore.length * CHUNK_ID_BYTES);
        toStore.forEach((j, k) => batchIds.copy(storeIds, k * CHUNK_ID_BYTES, j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES));
        sealed = await pool.seal(domain.domainId, slot, length, bs, toStore, storeIds);
      }
    } finally {
      pool.release(slot); // the batch is no longer needed once sealed
    }
    if (!sealed) return;
    const { out, lengths } = sealed;
    try {
      let at = 0;
      lengths.forEach((len, k) => {
        packs.add(storeIds.subarray(k * CHUNK_ID_BYTES, (k + 1) * CHUNK_ID_BYTES), out.buf.subarray(at, at + len));
        at += len;
        stats.newChunks++;
        stats.storedBytes += len;
      });
    } finally {
      pool.release(out); // packs.add copied the chunks
    }
    await packs.backpressure();
  };

  const reader = await volumes.openReader(projectId, rec.volumeId);
  try {
    if (reader.sizeBytes < rec.sizeBytes) throw new EngineStateError(`volume ${rec.volumeId} shrank below the backup size`);
    const inflight = new Set<Promise<void>>();
    const maxInflight = Math.max(2, pool.size * 2);
    let failure: unknown;
    for (let b = 0; b < blockCount && failure === undefined; b += config.batchBlocks) {
      while (inflight.size >= maxInflight) await Promise.race(inflight);
      const offset = (firstBlock + b) * bs;
      const length = Math.min(Math.min(config.batchBlocks, blockCount - b) * bs, rec.sizeBytes - offset);
      const slot = pool.acquire(length);
      let got: number;
      try {
        got = await reader.read(slot.buf.subarray(0, length), offset);
      } catch (err) {
        pool.release(slot);
        throw err;
      }
      if (got !== length) {
        pool.release(slot);
        throw new Error(`short read of volume ${rec.volumeId} at ${offset}: ${got} of ${length} bytes`);
      }
      const batchBlocks = Math.ceil(length / bs);
      const task: Promise<void> = processBatch(b, slot, length)
        .then(() => onProgress?.(batchBlocks))
        .catch((err) => {
          failure ??= err;
        })
        .finally(() => inflight.delete(task));
      inflight.add(task);
    }
    await Promise.all(inflight);
    if (failure !== undefined) throw failure;
    await packs.finish();
  } finally {
    await reader.close();
  }
  stats.packsWritten = packs.packsWritten;
  const sealedManifest = encodeManifest(domain.keys, backupId, segment, { firstBlock, blockCount, stats, ids });
  await store.put(manifestObject, sealedManifest);
  return stats;
}

/** Marks the backup available once every segment's manifest is stored. Idempotent. */
export async function commitBackup(deps: EngineDeps, projectId: string, backupId: string): Promise<BackupRecord> {
  const rec = await deps.catalog.getBackup(projectId, backupId);
  if (!rec) throw new EngineStateError(`backup ${backupId} not found`);
  if (rec.status === 'available') return rec;
  if (rec.status !== 'creating') throw new EngineStateError(`backup ${backupId} is ${rec.status}, not creating`);
  const domain = await domainOf(deps, rec);
  const stats = emptyStats();
  const manifests = await mapLimit(Array.from({ length: rec.segmentCount }, (_, i) => i), 8, async (segment) => {
    const key = manifestKey(rec.manifestPrefix, segment);
    if (!(await deps.store.exists(key))) throw new EngineStateError(`backup ${backupId}: segment ${segment} was not backed up`);
    return decodeManifest(domain.keys, backupId, segment, await deps.store.get(key));
  });
  for (const m of manifests) addStats(stats, m.stats);
  const now = new Date().toISOString();
  return deps.catalog.updateBackup(projectId, backupId, { status: 'available', stats, completedAt: now, updatedAt: now }, ['creating']);
}

/**
 * Marks a backup that could not complete as `error` and removes its manifests. Packs stay: other
 * backups may already deduplicate against chunks in them; GC reclaims what nothing references.
 */
export async function failBackup(deps: EngineDeps, projectId: string, backupId: string, reason: string): Promise<void> {
  const rec = await deps.catalog.getBackup(projectId, backupId);
  if (!rec || rec.status === 'available' || rec.status === 'error') return;
  await deps.catalog.updateBackup(projectId, backupId, { status: 'error', failReason: reason.slice(0, 1000) }, ['creating']);
  const keys: string[] = [];
  for await (const obj of deps.store.list(rec.manifestPrefix)) keys.push(obj.key);
  if (keys.length) await deps.store.delete(keys);
}

export interface RunBackupOptions {
  /** Segments processed at once in this process. */
  segmentConcurrency?: number;
  onProgress?: (p: Progress) => void;
}

/** The whole backup in one process: what the workflow does across Lambda invocations. */
export async function runBackup(deps: EngineDeps, req: BackupRequest, options: RunBackupOptions = {}): Promise<BackupRecord> {
  const rec = await prepareBackup(deps, req);
  const blocksTotal = Math.ceil(rec.sizeBytes / rec.blockSize);
  let blocksDone = 0;
  try {
    await mapLimit(Array.from({ length: rec.segmentCount }, (_, i) => i), options.segmentConcurrency ?? 1, (segment) =>
      backupSegment(deps, rec.projectId, rec.backupId, segment, (n) => {
        blocksDone += n;
        options.onProgress?.({ blocksDone, blocksTotal });
      }),
    );
    return await commitBackup(deps, rec.projectId, rec.backupId);
  } catch (err) {
    await failBackup(deps, rec.projectId, rec.backupId, err instanceof Error ? err.message : String(err)).catch(() => {});
    throw err;
  }
}

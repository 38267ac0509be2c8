// Restore: per segment, read the manifest, locate chunks in the index, fetch them with ranged GETs
// (neighbouring chunks of a pack in one request), verify each on the chunk workers (GCM tag and chunk id)
// and write the blocks. Any missing or corrupt piece stops the restore with a RestoreIntegrityError
// naming backup, block and pack.
//
// The next segment is planned (manifest and index lookups) while the current one's ranges are restored,
// so the pipeline does not drain between segments. A range (the unit opened on a worker and written)
// carries at most `restoreRangeBytes` of sealed bytes and of plaintext, or one chunk that is larger.
// Neighbouring ranges of a pack are read by one ranged GET (a fetch) of up to the store's preferred read
// size: on S3 a request costs far more than its bytes, so 16 MiB GETs instead of one per 4 MiB of
// plaintext (a quarter of the requests on the disk-like image). Memory is bounded whatever the data
// compresses to: at most `restoreConcurrency` fetches are in flight, each holding one slot of its sealed
// bytes, and at most `restoreConcurrency` ranges are opened at once, each holding one plaintext slot;
// equal slots are recycled by the pool. A version-2 block is pieces of chunks (docs/format.md): each piece is
// copied from its chunk's plaintext to its place, and what no piece covers is zeros. Where the target reads
// as zeros already (a new sparse image, the holes of an existing one) zeros are not written, neither zero
// blocks nor long zero stretches inside blocks, so a sparse volume restores sparse.
import { SEAL_OVERHEAD, isAllZero } from './chunk-codec.ts';
import type { Slot } from './chunk-pool.ts';
import type { EngineDeps, Progress } from './engine.ts';
import { EngineStateError, RestoreIntegrityError } from './errors.ts';
import type { KeyDomain } from './key-domains.ts';
import { ManifestVersionError, blockPieces, decodeManifest, idLeafBytes, manifestKey } from './manifest.ts';
import type { SegmentManifest } from './manifest.ts';
import type { BackupRecord, BlockWriter, ByteRange, ChunkLocation } from './ports.ts';
import { ObjectNotFoundError } from './ports.ts';
import { createLimiter } from '../util/concurrency.ts';
import { copyBytes } from '../util/aligned-memory.ts';

/** Chunks further apart than this in a pack are fetched by separate ranged GETs. */
const MAX_GAP_BYTES = 256 * 1024;
/** Volume writes in flight per restore: the kernel copies each into the page cache; more only contend. */
const WRITES_IN_FLIGHT = 2;

export interface RestoreRequest {
  /** The project whose volume is written (and, unless `backupProjectId` says otherwise, whose backup is read). */
  projectId: string;
  /**
   * The project that owns the backup, when it is not `projectId`: a backup shared with `projectId`. The backup
   * record, its manifests and chunks are read as the owner's, under the owner's key domain (the record names it);
   * no key or chunk is copied to the receiving project.
   */
  backupProjectId?: string;
  backupId: string;
  targetVolumeId: string;
  onProgress?: (p: Progress) => void;
  /**
   * Opens the target's writer instead of `deps.volumes.openWriter`: a restore whose segment tasks all write into
   * one target the provider finishes once (EBS: one snapshot per restore, each task's writer adding its blocks,
   * made a volume by the restore's last step). Absent: each call opens the volume itself (files).
   */
  openWriter?: (minSizeBytes: number) => Promise<BlockWriter>;
}

export interface RestoreResult {
  backupId: string;
  targetVolumeId: string;
  bytesWritten: number;
  blocks: number;
}

/** `length` bytes from `from` in a chunk's plaintext go to volume offset `target`. */
export interface ChunkPiece {
  target: number;
  from: number;
  length: number;
  /** The first piece of its block: the one that counts the block as restored. */
  countsBlock: boolean;
}

/** One stored chunk and the places on the volume it restores to. */
export interface ChunkRef {
  id: Buffer;
  location: ChunkLocation;
  /** Plaintext bytes the chunk must open to. */
  length: number;
  /** Byte offsets on the volume where the whole chunk goes, ascending: version-1 blocks. */
  targets: number[];
  /** Parts of the chunk that go elsewhere (version 2: pieces of blocks), in ascending target order. */
  pieces?: ChunkPiece[];
}

/** Neighbouring chunks of a pack, in pack order: opened together on a worker and written. */
export interface Range {
  pack: string;
  start: number;
  end: number;
  /** Sum of the chunks' plaintext lengths. */
  plainBytes: number;
  chunks: ChunkRef[];
  /** How the chunks' ids are checked: the leaf size of tree ids, or 0 for version-1 ids. */
  leafBytes: number;
}

/** One ranged GET: neighbouring ranges of a pack, in pack order. */
export interface Fetch {
  pack: string;
  start: number;
  end: number;
  ranges: Range[];
}

interface SegmentPlan {
  /** The segment's bytes on the volume. */
  offset: number;
  length: number;
  zeroBlocks: number[];
  /** Zero ranges inside blocks that have pieces (all-zero sub-chunks of a changed block). */
  gaps: Array<{ target: number; length: number }>;
  fetches: Fetch[];
}

/** The backup, its key domain and geometry: what every range of a restore needs. */
interface RestoreContext {
  deps: EngineDeps;
  rec: BackupRecord;
  domain: KeyDomain;
  writer: BlockWriter;
  /** Size of every slot the restore takes from the pool; a range's sealed bytes and its plaintext each fit in one. */
  slotBytes: number;
  /** Bytes one ranged GET may cover: the store's preferred read size, and at least a slot. */
  fetchBytes: number;
  writes: ReturnType<typeof createLimiter>;
  /** Ranges being opened and written at once (each holds a plaintext slot). */
  opens: ReturnType<typeof createLimiter>;
  progress: (blocks: number) => void;
}

/** The first volume offset a chunk restores to. */
const firstPlace = (chunk: ChunkRef) => Math.min(chunk.targets[0] ?? Infinity, chunk.pieces?.[0]?.target ?? Infinity);

/** The block an error about this chunk names: the first it restores. */
const blockAt = (rec: BackupRecord, chunk: ChunkRef) => Math.floor(firstPlace(chunk) / rec.blockSize);

async function loadRestorable(deps: EngineDeps, projectId: string, backupId: string): Promise<{ rec: BackupRecord; domain: KeyDomain }> {
  const rec = await deps.catalog.getBackup(projectId, backupId);
  if (!rec) throw new EngineStateError(`backup ${backupId} not found`);
  if (rec.status !== 'available' && rec.status !== 'restoring') throw new EngineStateError(`backup ${backupId} is ${rec.status}, not available`);
  const domain = await deps.domains.forBackup(rec.projectId, rec.kmsKeyId, rec.domainId);
  deps.pool.registerDomain(domain.domainId, domain.keys);
  return { rec, domain };
}

async function openTarget(deps: EngineDeps, rec: BackupRecord, req: RestoreRequest): Promise<BlockWriter> {
  const { projectId, targetVolumeId } = req;
  const writer = req.openWriter ? await req.openWriter(rec.sizeBytes) : await deps.volumes.openWriter(projectId, targetVolumeId, rec.sizeBytes);
  if (writer.sizeBytes < rec.sizeBytes) {
    await writer.close();
    throw new EngineStateError(`target volume ${targetVolumeId} is smaller than backup ${rec.backupId}`);
  }
  return writer;
}

function restoreContext(deps: EngineDeps, rec: BackupRecord, domain: KeyDomain, writer: BlockWriter, progress: (blocks: number) => void): RestoreContext {
  // A slot always holds at least one whole sealed block, whatever the setting (a range with a larger chunk takes a larger one).
  const slotBytes = Math.max(deps.config.restoreRangeBytes, rec.blockSize + SEAL_OVERHEAD);
  const fetchBytes = Math.max(slotBytes, deps.store.preferredReadBytes ?? 0);
  return { deps, rec, domain, writer, slotBytes, fetchBytes, writes: createLimiter(WRITES_IN_FLIGHT), opens: createLimiter(deps.config.restoreConcurrency), progress };
}

/** Restores the whole backup in this process. */
export async function restoreBackup(deps: EngineDeps, req: RestoreRequest): Promise<RestoreResult> {
  const { rec, domain } = await loadRestorable(deps, req.backupProjectId ?? req.projectId, req.backupId);
  const writer = await openTarget(deps, rec, req);
  const blocksTotal = Math.ceil(rec.sizeBytes / rec.blockSize);
  let blocksDone = 0;
  let bytesWritten: number;
  try {
    const ctx = restoreContext(deps, rec, domain, writer, (n) => {
      blocksDone += n;
      req.onProgress?.({ blocksDone, blocksTotal });
    });
    bytesWritten = await restoreSegments(ctx, Array.from({ length: rec.segmentCount }, (_, i) => i));
    await writer.flush();
  } finally {
    await writer.close();
  }
  return { backupId: rec.backupId, targetVolumeId: req.targetVolumeId, bytesWritten, blocks: blocksTotal };
}

/** Restores one segment (a Map iteration of the restore workflow); safe to retry. Returns bytes written. */
export async function restoreBackupSegment(deps: EngineDeps, req: RestoreRequest & { segment: number }, onBlocks?: (n: number) => void): Promise<number> {
  const { rec, domain } = await loadRestorable(deps, req.backupProjectId ?? req.projectId, req.backupId);
  if (req.segment < 0 || req.segment >= rec.segmentCount) throw new EngineStateError(`backup ${rec.backupId} has no segment ${req.segment}`);
  const writer = await openTarget(deps, rec, req);
  try {
    const written = await restoreSegments(restoreContext(deps, rec, domain, writer, (n) => onBlocks?.(n)), [req.segment]);
    await writer.flush();
    return written;
  } finally {
    await writer.close();
  }
}

/**
 * Restores the given segments with at most `restoreConcurrency` fetches reading, planning each segment
 * while the previous one's fetches run. Returns once nothing is in flight, also on failure.
 */
async function restoreSegments(ctx: RestoreContext, segments: number[]): Promise<number> {
  const limit = ctx.deps.config.restoreConcurrency;
  // Fetches holding their sealed slot (the GET and the opens): at most `limit`. A fetch whose ranges are
  // all opened leaves this set while its writes go on, so the next GET starts as soon as a slot is free.
  const reading = new Set<Promise<void>>();
  const unfinished = new Set<Promise<void>>();
  let failure: unknown;
  let written = 0;
  let next: Promise<SegmentPlan> | undefined = planSegment(ctx, segments[0]!);
  try {
    for (let i = 0; i < segments.length && failure === undefined; i++) {
      const plan = await next!;
      next = i + 1 < segments.length ? planSegment(ctx, segments[i + 1]!) : undefined;
      next?.catch(() => {}); // awaited on the next turn; a failure before that must not go unhandled
      // Where the target holds no data, zero stretches of the plaintext need no write either.
      let holes: (offset: number, length: number) => boolean = () => true;
      if (!ctx.writer.zeroed) {
        const cleared = await clearZeros(ctx, plan);
        written += cleared.written;
        holes = cleared.holes;
      }
      ctx.progress(plan.zeroBlocks.length);
      for (const fetch of plan.fetches) {
        while (reading.size >= limit) await Promise.race(reading);
        if (failure !== undefined) break;
        const { promise: sealedFree, resolve } = Promise.withResolvers<void>();
        const task: Promise<void> = restoreFetch(ctx, fetch, holes, resolve)
          .then((n) => {
            written += n;
          })
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => {
            resolve();
            unfinished.delete(task);
          });
        unfinished.add(task);
        const read: Promise<void> = sealedFree.finally(() => reading.delete(read));
        reading.add(read);
      }
    }
  } finally {
    await Promise.all(unfinished);
  }
  if (failure !== undefined) throw failure;
  return written;
}

async function loadManifest(deps: EngineDeps, rec: BackupRecord, domain: KeyDomain, segment: number): Promise<SegmentManifest> {
  const key = manifestKey(rec.manifestPrefix, segment);
  const firstBlock = segment * rec.segmentBlocks;
  let sealed: Buffer;
  try {
    sealed = await deps.store.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new RestoreIntegrityError(rec.backupId, firstBlock, '-', `manifest ${key} is missing`);
    throw err;
  }
  try {
    return decodeManifest(domain.keys, rec.backupId, segment, sealed);
  } catch (err) {
    if (err instanceof ManifestVersionError) throw new RestoreIntegrityError(rec.backupId, firstBlock, '-', `manifest ${key}: ${err.message}`);
    throw new RestoreIntegrityError(rec.backupId, firstBlock, '-', `manifest ${key} does not verify: ${(err as Error).message}`);
  }
}

/** The segment's zero blocks, and its chunks located and grouped into ranged GETs. */
async function planSegment(ctx: RestoreContext, segment: number): Promise<SegmentPlan> {
  const { deps, rec, domain } = ctx;
  const bs = rec.blockSize;
  const manifest = await loadManifest(deps, rec, domain, segment);
  const byChunk = new Map<string, ChunkRef>();
  const zeroBlocks: number[] = [];
  const gaps: SegmentPlan['gaps'] = [];
  for (let j = 0; j < manifest.blockCount; j++) {
    const block = manifest.firstBlock + j;
    // Most blocks of a sparse volume: nothing to resolve (a segment may hold 65,536 blocks).
    if (manifest.version === 2 && !manifest.pieces[j]!.length) {
      zeroBlocks.push(block);
      continue;
    }
    const length = Math.min(bs, rec.sizeBytes - block * bs);
    let pieces;
    try {
      pieces = blockPieces(manifest, j, length);
    } catch (err) {
      throw new RestoreIntegrityError(rec.backupId, block, '-', (err as Error).message);
    }
    if (!pieces.length) {
      zeroBlocks.push(block);
      continue;
    }
    let covered = 0;
    for (const p of pieces) {
      if (p.offset > covered) gaps.push({ target: block * bs + covered, length: p.offset - covered });
      covered = p.offset + p.length;
      const hex = p.chunkId.toString('hex');
      let ref = byChunk.get(hex);
      if (!ref) byChunk.set(hex, (ref = { id: p.chunkId, location: { pack: '', offset: 0, length: 0 }, length: p.chunkLength, targets: [] }));
      else if (ref.length !== p.chunkLength) throw new RestoreIntegrityError(rec.backupId, block, '-', `chunk ${hex} restores ${ref.length}-byte blocks, block needs ${p.chunkLength}`);
      // A version-1 block is its chunk whole; a version-2 block is pieces of chunks.
      if (manifest.version === 1) ref.targets.push(block * bs);
      else (ref.pieces ??= []).push({ target: block * bs + p.offset, from: p.chunkOffset, length: p.length, countsBlock: p === pieces[0] });
    }
    if (covered < length) gaps.push({ target: block * bs + covered, length: length - covered });
  }
  const locations = await deps.index.lookup(domain.domainId, [...byChunk.keys()]);
  for (const [hex, ref] of byChunk) {
    const loc = locations.get(hex);
    if (!loc) throw new RestoreIntegrityError(rec.backupId, blockAt(rec, ref), 'unknown', `chunk ${hex} is not in the chunk index`);
    ref.location = loc;
  }
  const offset = manifest.firstBlock * bs;
  const length = Math.max(0, Math.min(manifest.blockCount * bs, rec.sizeBytes - offset));
  const ranges = planRanges([...byChunk.values()], ctx.slotBytes, idLeafBytes(manifest));
  return { offset, length, zeroBlocks, gaps, fetches: planFetches(ranges, ctx.fetchBytes) };
}

/**
 * Groups chunks by pack and merges neighbours into ranged GETs of at most `maxBytes` of sealed data and
 * of plaintext, ordered by where they land on the volume so writes move through it front to back.
 * `leafBytes` says how the chunks' ids are checked (see Range).
 */
export function planRanges(chunks: ChunkRef[], maxBytes: number, leafBytes = 0): Range[] {
  const byPack = Map.groupBy(chunks, (c) => c.location.pack);
  const ranges: Range[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.location.offset - b.location.offset);
    let current: Range | undefined;
    for (const c of list) {
      const end = c.location.offset + c.location.length;
      if (current && c.location.offset - current.end <= MAX_GAP_BYTES && end - current.start <= maxBytes && current.plainBytes + c.length <= maxBytes) {
        current.end = Math.max(current.end, end);
        current.plainBytes += c.length;
        current.chunks.push(c);
      } else {
        current = { pack, start: c.location.offset, end, plainBytes: c.length, chunks: [c], leafBytes };
        ranges.push(current);
      }
    }
  }
  const firstTarget = (r: Range) => Math.min(...r.chunks.map(firstPlace));
  const order = new Map(ranges.map((r) => [r, firstTarget(r)]));
  return ranges.sort((a, b) => order.get(a)! - order.get(b)!);
}

/**
 * Groups ranges into ranged GETs of at most `maxBytes`: neighbours in a pack (at most MAX_GAP_BYTES apart),
 * whatever order they are written in (chunks sealed on two workers reach a pack out of volume order). GETs
 * are ordered by where their first range lands on the volume, as planRanges orders ranges.
 */
export function planFetches(ranges: Range[], maxBytes: number): Fetch[] {
  const order = new Map(ranges.map((r, i) => [r, i]));
  const byPack = Map.groupBy(ranges, (r) => r.pack);
  const fetches: Fetch[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.start - b.start);
    let current: Fetch | undefined;
    for (const r of list) {
      if (current && r.start >= current.end && r.start - current.end <= MAX_GAP_BYTES && r.end - current.start <= maxBytes) {
        current.end = r.end;
        current.ranges.push(r);
      } else {
        current = { pack, start: r.start, end: r.end, ranges: [r] };
        fetches.push(current);
      }
    }
  }
  const first = new Map(fetches.map((f) => [f, Math.min(...f.ranges.map((r) => order.get(r)!))]));
  return fetches.sort((a, b) => first.get(a)! - first.get(b)!);
}

/** One write: `length` bytes at `from` in the plaintext slot go to volume offset `target`. */
export interface WriteRun {
  from: number;
  length: number;
  target: number;
}

/**
 * The writes for chunks opened back to back (chunk i at `offsets[i]`): chunks (or pieces of them) that are
 * neighbours both in the slot and on the volume (the common case after a full backup) go out as one write;
 * the other places of a chunk used more than once (dedup) are written on their own.
 */
export function writeRuns(chunks: ChunkRef[], offsets: number[]): WriteRun[] {
  const runs: WriteRun[] = [];
  let run: WriteRun | undefined;
  const follows = (from: number, target: number) => run !== undefined && run.from + run.length === from && run.target + run.length === target;
  chunks.forEach((chunk, i) => {
    const from = offsets[i]!;
    if (chunk.targets.length) {
      const next = run && run.from + run.length === from ? chunk.targets.indexOf(run.target + run.length) : -1;
      if (next >= 0) run!.length += chunk.length;
      else {
        run = { from, length: chunk.length, target: chunk.targets[0]! };
        runs.push(run);
      }
      const joined = next >= 0 ? next : 0;
      chunk.targets.forEach((target, k) => {
        if (k !== joined) runs.push({ from, length: chunk.length, target });
      });
    }
    for (const p of chunk.pieces ?? []) {
      if (follows(from + p.from, p.target)) run!.length += p.length;
      else {
        run = { from: from + p.from, length: p.length, target: p.target };
        runs.push(run);
      }
    }
  });
  return runs;
}

/** Zero stretches this long (and longer) are left out of writes where the target holds no data. */
const MIN_ZERO_STRETCH = 64 * 1024;
const PAGE_BYTES = 4096;

/**
 * The parts of `run` to write when zero stretches of at least `minZero` bytes (in whole pages from the
 * run's start) may be left out, because the target reads as zeros there already: a restore keeps the
 * holes of a sparse volume inside the blocks it writes.
 */
export function nonZeroParts(buf: Buffer, run: WriteRun, minZero = MIN_ZERO_STRETCH): WriteRun[] {
  const parts: WriteRun[] = [];
  const part = (from: number, to: number) => {
    if (to > from) parts.push({ from: run.from + from, length: to - from, target: run.target + from });
  };
  let start = 0;
  let zeroFrom = -1;
  for (let at = 0; at < run.length; at += PAGE_BYTES) {
    const end = Math.min(run.length, at + PAGE_BYTES);
    if (isAllZero(buf.subarray(run.from + at, run.from + end))) {
      if (zeroFrom < 0) zeroFrom = at;
      continue;
    }
    if (zeroFrom >= 0 && at - zeroFrom >= minZero) {
      part(start, zeroFrom);
      start = at;
    }
    zeroFrom = -1;
  }
  part(start, zeroFrom >= 0 && run.length - zeroFrom >= minZero ? zeroFrom : run.length);
  return parts;
}

/**
 * Reads one fetch with a ranged GET, then opens, verifies and writes each of its ranges; returns bytes
 * written. `holes(offset, length)` says whether the target reads as zeros there (zero stretches are then
 * not written). Calls `onSealedFree` once the fetch's sealed slot is back in the pool.
 */
async function restoreFetch(ctx: RestoreContext, fetch: Fetch, holes: (offset: number, length: number) => boolean, onSealedFree: () => void): Promise<number> {
  const { deps, rec } = ctx;
  const length = fetch.end - fetch.start;
  const sealed = deps.pool.acquire(Math.max(ctx.slotBytes, length));
  let restored: Array<Promise<number>>;
  try {
    try {
      const data = await deps.store.getRange(fetch.pack, fetch.start, length, sealed.buf.subarray(0, length));
      if (data.buffer !== sealed.buf.buffer) copyBytes(data, sealed.buf, 0); // a store that did not read into the slot
    } catch (err) {
      const reason = err instanceof ObjectNotFoundError ? 'pack is missing' : `pack could not be read: ${(err as Error).message}`;
      throw new RestoreIntegrityError(rec.backupId, blockAt(rec, fetch.ranges[0]!.chunks[0]!), fetch.pack, reason, err);
    }
    // The sealed slot goes back once every range is opened (also when one fails), not after the writes:
    // the next GET need not wait for this one's plaintext to reach the volume.
    const opened: Array<Promise<void>> = [];
    restored = fetch.ranges.map((range) => {
      const { promise, resolve } = Promise.withResolvers<void>();
      opened.push(promise);
      const done = ctx.opens(() => restoreRange(ctx, range, sealed, fetch.start, length, holes, resolve)).finally(resolve);
      done.catch(() => {}); // settled below, after the sealed slot is back; a failure before then is not unhandled
      return done;
    });
    await Promise.all(opened);
  } finally {
    deps.pool.release(sealed);
    onSealedFree();
  }
  const results = await Promise.allSettled(restored);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value : 0), 0);
}

/**
 * Opens and verifies one range's chunks from the fetch's sealed bytes (`sealed`, which start at pack offset
 * `fetchStart` and hold `fetchLength` bytes) and writes them; returns bytes written. Calls `onOpened` once
 * it no longer reads `sealed`.
 */
async function restoreRange(
  ctx: RestoreContext,
  range: Range,
  sealed: Slot,
  fetchStart: number,
  fetchLength: number,
  holes: (offset: number, length: number) => boolean,
  onOpened: () => void,
): Promise<number> {
  const { deps, rec, domain, writer, slotBytes } = ctx;
  // A chunk larger than the setting (a whole extent that did not compress) opens alone into a larger slot.
  const plainSlotBytes = Math.max(slotBytes, range.plainBytes);
  let opened;
  try {
    opened = await deps.pool.open(
      domain.domainId,
      sealed,
      fetchLength,
      range.chunks.map((c) => ({ offset: c.location.offset - fetchStart, length: c.location.length })),
      Buffer.concat(range.chunks.map((c) => c.id)),
      Math.max(...range.chunks.map((c) => c.length)),
      plainSlotBytes,
      range.leafBytes,
    );
  } finally {
    onOpened();
  }
  if (!opened.ok) {
    const bad = range.chunks[opened.index]!;
    throw new RestoreIntegrityError(rec.backupId, blockAt(rec, bad), range.pack, opened.reason);
  }
  const plain: Slot = opened.out;
  try {
    range.chunks.forEach((c, i) => {
      const got = opened.lengths[i]!;
      if (got !== c.length) throw new RestoreIntegrityError(rec.backupId, blockAt(rec, c), range.pack, `chunk holds ${got} bytes, the manifest says ${c.length}`);
    });
    const runs = writeRuns(range.chunks, opened.offsets).flatMap((r) => (holes(r.target, r.length) ? nonZeroParts(plain.buf, r) : [r]));
    // Every write settles before the slot goes back to the pool, also when one of them fails.
    const results = await Promise.allSettled(runs.map((r) => ctx.writes(() => writer.write(plain.buf.subarray(r.from, r.from + r.length), r.target))));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    ctx.progress(range.chunks.reduce((n, c) => n + c.targets.length + (c.pieces?.filter((p) => p.countsBlock).length ?? 0), 0));
    return runs.reduce((n, r) => n + r.length, 0);
  } finally {
    deps.pool.release(plain);
  }
}

/** Longest run read back at once. */
const ZERO_RUN_BLOCKS = 16;

/** The byte ranges of the plan that must read as zeros, ascending and merged: zero blocks and gaps. */
function zeroRanges(plan: SegmentPlan, bs: number, sizeBytes: number): ByteRange[] {
  const out: ByteRange[] = [];
  const add = (offset: number, length: number) => {
    const last = out.at(-1);
    if (last && last.offset + last.length === offset) last.length += length;
    else out.push({ offset, length });
  };
  let g = 0;
  for (const block of plan.zeroBlocks) {
    const at = block * bs;
    for (; g < plan.gaps.length && plan.gaps[g]!.target < at; g++) add(plan.gaps[g]!.target, plan.gaps[g]!.length);
    add(at, Math.min(bs, sizeBytes - at));
  }
  for (; g < plan.gaps.length; g++) add(plan.gaps[g]!.target, plan.gaps[g]!.length);
  return out;
}

/** Whether any of `ranges` (ascending, disjoint) overlaps [offset, offset + length). */
function overlaps(ranges: ByteRange[], offset: number, length: number): boolean {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.offset + ranges[mid]!.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo < ranges.length && ranges[lo]!.offset < offset + length;
}

/** The parts of `a` that lie within `b` (both ascending and disjoint). */
function intersect(a: ByteRange[], b: ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const start = Math.max(a[i]!.offset, b[j]!.offset);
    const endA = a[i]!.offset + a[i]!.length;
    const endB = b[j]!.offset + b[j]!.length;
    if (start < Math.min(endA, endB)) out.push({ offset: start, length: Math.min(endA, endB) - start });
    if (endA <= endB) i++;
    else j++;
  }
  return out;
}

/**
 * Makes the segment's zero blocks, and the zero ranges inside its other blocks, read as zeros on a target
 * not known to: nothing where the target holds no data (its holes are neither read nor written); elsewhere
 * holes are punched where the target can, else what is not zero already is overwritten (reading back is far
 * cheaper than writing zeros over unchanged data). Returns bytes written.
 */
async function clearZeros(ctx: RestoreContext, plan: SegmentPlan): Promise<{ written: number; holes: (offset: number, length: number) => boolean }> {
  const { writer, rec } = ctx;
  const data = writer.writtenRanges ? await writer.writtenRanges(plan.offset, plan.length) : undefined;
  const holes = data ? (offset: number, length: number) => !overlaps(data, offset, length) : () => false;
  const zeros = zeroRanges(plan, rec.blockSize, rec.sizeBytes);
  const todo = data ? intersect(zeros, data) : zeros;
  if (!todo.length) return { written: 0, holes };
  if (writer.discard && (await writer.discard(todo))) return { written: 0, holes };
  return { written: await overwriteNonZero(ctx, todo), holes };
}

/** Reads the ranges back and writes zeros over each part of a block that is not all zeros. */
async function overwriteNonZero(ctx: RestoreContext, ranges: ByteRange[]): Promise<number> {
  const { writer } = ctx;
  const bs = ctx.rec.blockSize;
  const scratch = Buffer.alloc(ZERO_RUN_BLOCKS * bs);
  const zeros = Buffer.alloc(bs);
  let written = 0;
  for (const r of ranges) {
    const end = r.offset + r.length;
    for (let at = r.offset; at < end; ) {
      const len = Math.min(scratch.length, end - at);
      const got = await writer.read(scratch.subarray(0, len), at);
      // Parts end at block boundaries: a block that is not zero costs at most one block's write.
      for (let p = at; p < at + len; ) {
        const q = Math.min(at + len, (Math.floor(p / bs) + 1) * bs);
        if (q - at > got || !isAllZero(scratch.subarray(p - at, q - at))) {
          await writer.write(zeros.subarray(0, q - p), p);
          written += q - p;
        }
        p = q;
      }
      at += len;
    }
  }
  return written;
}

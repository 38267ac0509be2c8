// Restore: per segment, read the manifest, locate chunks in the index, fetch them with ranged GETs
// (adjacent chunks of a pack in one request), verify each (GCM tag and chunk id) and write the blocks.
// Any missing or corrupt piece stops the restore with a RestoreIntegrityError naming backup, block and pack.
import { CHUNK_ID_BYTES, isAllZero } from './chunk-codec.ts';
import type { EngineDeps, Progress } from './engine.ts';
import { EngineStateError, RestoreIntegrityError } from './errors.ts';
import type { KeyDomain } from './key-domains.ts';
import { ManifestVersionError, ZERO_ID, decodeManifest, manifestKey } from './manifest.ts';
import type { SegmentManifest } from './manifest.ts';
import type { BackupRecord, BlockWriter, ChunkLocation } from './ports.ts';
import { ObjectNotFoundError } from './ports.ts';
import { mapLimit } from '../util/concurrency.ts';
import type { OpenOutput } from './chunk-pool.ts';

/** Longest ranged GET; chunks further apart than MAX_GAP in a pack are fetched separately. */
const MAX_RANGE_BYTES = 16 * 1024 * 1024;
const MAX_GAP_BYTES = 256 * 1024;

export interface RestoreRequest {
  projectId: string;
  backupId: string;
  targetVolumeId: string;
  onProgress?: (p: Progress) => void;
}

export interface RestoreResult {
  backupId: string;
  targetVolumeId: string;
  bytesWritten: number;
  blocks: number;
}

interface ChunkRef {
  hex: string;
  id: Buffer;
  location: ChunkLocation;
  blocks: number[];
}

interface Range {
  pack: string;
  start: number;
  end: number;
  chunks: ChunkRef[];
}

async function loadRestorable(deps: EngineDeps, projectId: string, backupId: string): Promise<{ rec: BackupRecord; domain: KeyDomain }> {
  const rec = await deps.catalog.getBackup(projectId, backupId);
  if (!rec) throw new EngineStateError(`backup ${backupId} not found`);
  if (rec.status !== 'available' && rec.status !== 'restoring') throw new EngineStateError(`backup ${backupId} is ${rec.status}, not available`);
  const domain = await deps.domains.forBackup(rec.projectId, rec.kmsKeyId, rec.domainId);
  deps.pool.registerDomain(domain.domainId, domain.keys);
  return { rec, domain };
}

async function openTarget(deps: EngineDeps, rec: BackupRecord, projectId: string, targetVolumeId: string): Promise<BlockWriter> {
  const writer = await deps.volumes.openWriter(projectId, targetVolumeId, rec.sizeBytes);
  if (writer.sizeBytes < rec.sizeBytes) {
    await writer.close();
    throw new EngineStateError(`target volume ${targetVolumeId} is smaller than backup ${rec.backupId}`);
  }
  return writer;
}

/** Restores the whole backup in this process. */
export async function restoreBackup(deps: EngineDeps, req: RestoreRequest): Promise<RestoreResult> {
  const { rec, domain } = await loadRestorable(deps, req.projectId, req.backupId);
  const writer = await openTarget(deps, rec, req.projectId, req.targetVolumeId);
  const blocksTotal = Math.ceil(rec.sizeBytes / rec.blockSize);
  let blocksDone = 0;
  let bytesWritten = 0;
  try {
    for (let segment = 0; segment < rec.segmentCount; segment++) {
      bytesWritten += await restoreSegment(deps, rec, domain, segment, writer, (n) => {
        blocksDone += n;
        req.onProgress?.({ blocksDone, blocksTotal });
      });
    }
    await writer.flush();
  } finally {
    await writer.close();
  }
  return { backupId: rec.backupId, targetVolumeId: req.targetVolumeId, bytesWritten, blocks: blocksTotal };
}

/** Restores one segment (a Map iteration of the restore workflow); safe to retry. Returns bytes written. */
export async function restoreBackupSegment(deps: EngineDeps, req: RestoreRequest & { segment: number }, onBlocks?: (n: number) => void): Promise<number> {
  const { rec, domain } = await loadRestorable(deps, req.projectId, req.backupId);
  if (req.segment < 0 || req.segment >= rec.segmentCount) throw new EngineStateError(`backup ${rec.backupId} has no segment ${req.segment}`);
  const writer = await openTarget(deps, rec, req.projectId, req.targetVolumeId);
  try {
    const written = await restoreSegment(deps, rec, domain, req.segment, writer, (n) => onBlocks?.(n));
    await writer.flush();
    return written;
  } finally {
    await writer.close();
  }
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

async function restoreSegment(deps: EngineDeps, rec: BackupRecord, domain: KeyDomain, segment: number, writer: BlockWriter, progress: (blocks: number) => void): Promise<number> {
  const bs = rec.blockSize;
  const manifest = await loadManifest(deps, rec, domain, segment);
  const blockLength = (block: number) => Math.min(bs, rec.sizeBytes - block * bs);
  const byChunk = new Map<string, ChunkRef>();
  const zeroBlocks: number[] = [];
  for (let j = 0; j < manifest.blockCount; j++) {
    const id = manifest.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES);
    const block = manifest.firstBlock + j;
    if (id.equals(ZERO_ID)) {
      zeroBlocks.push(block);
      continue;
    }
    const hex = id.toString('hex');
    const ref = byChunk.get(hex);
    if (ref) ref.blocks.push(block);
    else byChunk.set(hex, { hex, id, location: { pack: '', offset: 0, length: 0 }, blocks: [block] });
  }

  let written = 0;
  if (!writer.zeroed) written += await zeroTarget(writer, zeroBlocks, bs, blockLength);
  progress(zeroBlocks.length);

  const locations = await deps.index.lookup(domain.domainId, [...byChunk.keys()]);
  for (const ref of byChunk.values()) {
    const loc = locations.get(ref.hex);
    if (!loc) throw new RestoreIntegrityError(rec.backupId, ref.blocks[0]!, 'unknown', `chunk ${ref.hex} is not in the chunk index`);
    ref.location = loc;
  }

  const ranges = planRanges([...byChunk.values()]);
  await mapLimit(ranges, deps.config.restoreConcurrency, async (range) => {
    const first = range.chunks[0]!;
    const length = range.end - range.start;
    const slot = deps.pool.acquire(length);
    let opened: OpenOutput;
    try {
      try {
        const data = await deps.store.getRange(range.pack, range.start, length, slot.buf.subarray(0, length));
        if (data.buffer !== slot.buf.buffer) data.copy(slot.buf); // a store that did not read into the slot
      } catch (err) {
        const reason = err instanceof ObjectNotFoundError ? 'pack is missing' : `pack could not be read: ${(err as Error).message}`;
        throw new RestoreIntegrityError(rec.backupId, first.blocks[0]!, range.pack, reason);
      }
      opened = await deps.pool.open(
        domain.domainId,
        slot,
        length,
        range.chunks.map((c) => ({ offset: c.location.offset - range.start, length: c.location.length })),
        Buffer.concat(range.chunks.map((c) => c.id)),
        bs,
      );
    } finally {
      deps.pool.release(slot);
    }
    if (!opened.ok) {
      const bad = range.chunks[opened.index]!;
      throw new RestoreIntegrityError(rec.backupId, bad.blocks[0]!, range.pack, opened.reason);
    }
    let blocks = 0;
    try {
      // Chunks that are neighbours in the pack and on the volume (the common case after a full backup)
      // go out in one write; blocks that share a chunk (dedup) are written on their own.
      let run: { from: number; to: number; target: number } | undefined;
      const flush = async () => {
        if (!run) return;
        await writer.write(opened.out.buf.subarray(run.from, run.to), run.target);
        run = undefined;
      };
      for (let i = 0; i < range.chunks.length; i++) {
        const chunk = range.chunks[i]!;
        const from = opened.offsets[i]!;
        const length = opened.lengths[i]!;
        for (const [k, block] of chunk.blocks.entries()) {
          if (length !== blockLength(block)) {
            throw new RestoreIntegrityError(rec.backupId, block, range.pack, `chunk holds ${length} bytes, block needs ${blockLength(block)}`);
          }
          const target = block * bs;
          if (k === 0 && run && run.to === from && run.target + (run.to - run.from) === target) run.to += length;
          else if (k === 0) {
            await flush();
            run = { from, to: from + length, target };
          } else await writer.write(opened.out.buf.subarray(from, from + length), target);
          written += length;
          blocks++;
        }
      }
      await flush();
    } finally {
      deps.pool.release(opened.out);
    }
    progress(blocks);
  });
  return written;
}

/** Longest run of zero blocks read back at once. */
const ZERO_RUN_BLOCKS = 16;

/**
 * Makes the target read as zeros at these blocks. Blocks that already are zero (a fresh sparse image,
 * or unchanged data) are only read back, which is far cheaper than writing zeros over them.
 */
async function zeroTarget(writer: BlockWriter, blocks: number[], bs: number, blockLength: (block: number) => number): Promise<number> {
  let written = 0;
  const scratch = Buffer.alloc(ZERO_RUN_BLOCKS * bs);
  const zeros = Buffer.alloc(bs);
  for (let i = 0; i < blocks.length; ) {
    let j = i + 1;
    while (j < blocks.length && j - i < ZERO_RUN_BLOCKS && blocks[j] === blocks[j - 1]! + 1) j++;
    const first = blocks[i]!;
    const length = (blocks[j - 1]! - first) * bs + blockLength(blocks[j - 1]!);
    const got = await writer.read(scratch.subarray(0, length), first * bs);
    for (let k = i; k < j; k++) {
      const at = (blocks[k]! - first) * bs;
      const len = blockLength(blocks[k]!);
      if (at + len <= got && isAllZero(scratch.subarray(at, at + len))) continue;
      await writer.write(zeros.subarray(0, len), blocks[k]! * bs);
      written += len;
    }
    i = j;
  }
  return written;
}

/** Groups chunks by pack and merges neighbours into ranged GETs. */
function planRanges(chunks: ChunkRef[]): Range[] {
  const byPack = new Map<string, ChunkRef[]>();
  for (const c of chunks) {
    const list = byPack.get(c.location.pack);
    if (list) list.push(c);
    else byPack.set(c.location.pack, [c]);
  }
  const ranges: Range[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.location.offset - b.location.offset);
    let current: Range | undefined;
    for (const c of list) {
      const end = c.location.offset + c.location.length;
      if (current && c.location.offset - current.end <= MAX_GAP_BYTES && end - current.start <= MAX_RANGE_BYTES) {
        current.end = Math.max(current.end, end);
        current.chunks.push(c);
      } else {
        current = { pack, start: c.location.offset, end, chunks: [c] };
        ranges.push(current);
      }
    }
  }
  return ranges;
}

// Backup manifests, one object per segment: block index -> chunk id (32 zero bytes for a zero block).
// Sealed with the domain key and bound to (backup, segment), so a manifest cannot be replayed elsewhere.
// Payload: json length (u32 LE) | json { firstBlock, blockCount, stats } | ids (blockCount x 32 bytes)
import { CHUNK_ID_BYTES, openMetadata, sealMetadata } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { BackupStats } from './ports.ts';

export interface SegmentManifest {
  firstBlock: number;
  blockCount: number;
  stats: BackupStats;
  ids: Buffer;
}

export const ZERO_ID = Buffer.alloc(CHUNK_ID_BYTES);

export function manifestKey(prefix: string, segment: number): string {
  return `${prefix}seg-${String(segment).padStart(6, '0')}`;
}

function context(backupId: string, segment: number) {
  return `manifest:${backupId}:${segment}`;
}

export function encodeManifest(keys: DomainKeys, backupId: string, segment: number, m: SegmentManifest): Buffer {
  const json = Buffer.from(JSON.stringify({ firstBlock: m.firstBlock, blockCount: m.blockCount, stats: m.stats }));
  const payload = Buffer.allocUnsafe(4 + json.length + m.ids.length);
  payload.writeUInt32LE(json.length, 0);
  json.copy(payload, 4);
  m.ids.copy(payload, 4 + json.length);
  return sealMetadata(keys, context(backupId, segment), payload);
}

export function decodeManifest(keys: DomainKeys, backupId: string, segment: number, sealed: Buffer): SegmentManifest {
  const payload = openMetadata(keys, context(backupId, segment), sealed);
  const jsonLength = payload.readUInt32LE(0);
  const meta = JSON.parse(payload.subarray(4, 4 + jsonLength).toString('utf8')) as Omit<SegmentManifest, 'ids'>;
  const ids = payload.subarray(4 + jsonLength);
  if (ids.length !== meta.blockCount * CHUNK_ID_BYTES) throw new Error(`manifest ${backupId}/${segment} is inconsistent`);
  return { ...meta, ids };
}

export function emptyStats(): BackupStats {
  return { blocks: 0, zeroBlocks: 0, chunkCount: 0, reusedFromParent: 0, dedupHits: 0, newChunks: 0, storedBytes: 0, logicalBytes: 0, packsWritten: 0 };
}

export function addStats(into: BackupStats, s: BackupStats): BackupStats {
  for (const k of Object.keys(into) as Array<keyof BackupStats>) into[k] += s[k];
  return into;
}

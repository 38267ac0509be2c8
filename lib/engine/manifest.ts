// Backup manifests, one object per segment: block index -> chunk id (32 zero bytes for a zero block).
// Layout (docs/format.md): version(1) | sealed metadata (flags | nonce | ciphertext | tag)
// The version byte is in clear, so a reader can refuse a newer format before it needs a key, and is bound
// into the associated data with (backup, segment), so a manifest cannot be replayed elsewhere or relabelled.
// Payload of version 1: json length (u32 LE) | json { firstBlock, blockCount, stats } | ids (blockCount x 32 bytes)
import { CHUNK_ID_BYTES, ChunkIntegrityError, openMetadata, sealMetadata } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { BackupStats } from './ports.ts';

export const MANIFEST_VERSION = 1;

export interface SegmentManifest {
  firstBlock: number;
  blockCount: number;
  stats: BackupStats;
  ids: Buffer;
}

export const ZERO_ID = Buffer.alloc(CHUNK_ID_BYTES);

/** A manifest written in a format this reader does not know (a newer OpenVBS, or a damaged version byte). */
export class ManifestVersionError extends Error {
  override name = 'ManifestVersionError';
  readonly backupId: string;
  readonly segment: number;
  readonly version: number;

  constructor(backupId: string, segment: number, version: number) {
    super(`manifest ${segmentName(segment)} of backup ${backupId} has format version ${version}; this OpenVBS reads only version ${MANIFEST_VERSION}`);
    this.backupId = backupId;
    this.segment = segment;
    this.version = version;
  }
}

function segmentName(segment: number): string {
  return `seg-${String(segment).padStart(6, '0')}`;
}

export function manifestKey(prefix: string, segment: number): string {
  return `${prefix}${segmentName(segment)}`;
}

function context(version: number, backupId: string, segment: number) {
  return `manifest:v${version}:${backupId}:${segment}`;
}

export function encodeManifest(keys: DomainKeys, backupId: string, segment: number, m: SegmentManifest): Buffer {
  const json = Buffer.from(JSON.stringify({ firstBlock: m.firstBlock, blockCount: m.blockCount, stats: m.stats }));
  const payload = Buffer.allocUnsafe(4 + json.length + m.ids.length);
  payload.writeUInt32LE(json.length, 0);
  json.copy(payload, 4);
  m.ids.copy(payload, 4 + json.length);
  return Buffer.concat([Buffer.of(MANIFEST_VERSION), sealMetadata(keys, context(MANIFEST_VERSION, backupId, segment), payload)]);
}

/** Throws ManifestVersionError for an unknown version, ChunkIntegrityError when it does not verify. */
export function decodeManifest(keys: DomainKeys, backupId: string, segment: number, stored: Buffer): SegmentManifest {
  if (stored.length === 0) throw new ChunkIntegrityError(`manifest ${segmentName(segment)} of backup ${backupId} is empty`);
  const version = stored[0]!;
  if (version !== MANIFEST_VERSION) throw new ManifestVersionError(backupId, segment, version);
  const payload = openMetadata(keys, context(version, backupId, segment), stored.subarray(1));
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

// The ports the engine talks to. AWS adapters (S3, DynamoDB, KMS) and volume providers implement them;
// tests can wrap them (e.g. to inject a failure) without touching the engine.

/** Where packs and manifests live (S3). */
export interface ObjectStore {
  /**
   * Stores `body` whole: a reader sees the old object, the new one or nothing, never part of one. The caller
   * may reuse `body` once this resolves, so a store must not keep it.
   */
  put(key: string, body: Uint8Array): Promise<void>;
  /** Stores `body` only if no object has this key; false (and nothing written) when one does. */
  putIfAbsent(key: string, body: Uint8Array): Promise<boolean>;
  /** Whole object; throws ObjectNotFoundError when absent. */
  get(key: string): Promise<Buffer>;
  /**
   * Bytes [start, start + length); throws ObjectNotFoundError when absent. A store may read straight
   * into `into` (at least `length` bytes) and return a view of it, saving an allocation and a copy.
   */
  getRange(key: string, start: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * How many bytes one ranged read should cover where the caller can choose (a restore reading neighbouring
   * chunks of a pack): what amortizes the store's cost per request. Absent: the caller's own unit.
   */
  readonly preferredReadBytes?: number;
  exists(key: string): Promise<boolean>;
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;
  delete(keys: string[]): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  override name = 'ObjectNotFoundError';
  readonly key: string;

  constructor(key: string) {
    super(`object ${key} not found`);
    this.key = key;
  }
}

export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
  /**
   * Set (to the epoch ms of the GC run) when garbage collection found no backup referring to the chunk and may
   * delete the entry: a reader may still use it, a backup must not deduplicate against it (docs/format.md).
   */
  marked?: number;
}

/** Chunk id -> location, per key domain (DynamoDB). Ids are hex strings. */
export interface ChunkIndex {
  lookup(domainId: string, ids: string[]): Promise<Map<string, ChunkLocation>>;
  record(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>): Promise<void>;
}

/** A master key of the key service (a KMS key on AWS, a key file locally). */
export interface KeyInfo {
  /** The key's id (a UUID on KMS). */
  keyId: string;
  /** Its ARN: the name key domains record. */
  arn: string;
  alias?: string;
  description?: string;
  enabled: boolean;
  /** The project that created it through the API; undefined for the service's own key. */
  owner?: string;
  createdAt: string;
}

/**
 * Wraps and unwraps data keys (KMS), and manages the customer keys projects create. A key may be named by
 * id, ARN or `alias/<name>`.
 */
export interface KeyService {
  generateDataKey(kmsKeyId: string, context: Record<string, string>): Promise<{ plaintext: Buffer; wrapped: Buffer }>;
  /** Fails (KeyAccessError) when the blob was wrapped by another key or under another context. */
  unwrap(kmsKeyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer>;
  createKey(options: { owner?: string; alias?: string; description?: string }): Promise<KeyInfo>;
  /** undefined when no key answers to this id, ARN or alias. */
  describeKey(keyId: string): Promise<KeyInfo | undefined>;
  /** The keys `owner` created, oldest first. */
  listKeys(owner: string): Promise<KeyInfo[]>;
}

/** A key service refused to wrap or unwrap (unknown or disabled key, wrong key, wrong context, damaged blob). */
export class KeyAccessError extends Error {
  override name = 'KeyAccessError';
}

export interface KeyDomainRecord {
  projectId: string;
  domainId: string;
  /** The KMS key that wraps this domain's data key. */
  kmsKeyId: string;
  wrappedKey: Buffer;
  createdAt: string;
}

export type BackupStatus = 'creating' | 'available' | 'error' | 'restoring' | 'deleting' | 'error_restoring';

/**
 * What a backup cost (docs/format.md, "Manifests"). Blocks are counted in blocks; `dedupHits` and
 * `newChunks` count chunks, which in version-1 backups were blocks and since version 2 are extents and
 * sub-chunks.
 */
export interface BackupStats {
  /** Blocks in the volume, zero blocks included. */
  blocks: number;
  /** All-zero blocks (nothing stored). */
  zeroBlocks: number;
  /** Non-zero blocks: the blocks made of chunks. */
  chunkCount: number;
  /** Non-zero blocks equal to the parent's at the same offset: their pieces are the parent's. */
  reusedFromParent: number;
  /** Non-zero sub-chunks of changed blocks equal to the parent's at the same offset (absent in version 1). */
  reusedSubChunks?: number;
  /** Chunks found already stored (index hit or earlier in this segment): stored again by no one. */
  dedupHits: number;
  /** Chunks this backup wrote (extents and sub-chunks). */
  newChunks: number;
  /** How many of `newChunks` are sub-chunks (absent in version 1). */
  newSubChunks?: number;
  /** Sealed bytes this backup wrote into packs (chunk payloads). */
  storedBytes: number;
  /** Bytes of the non-zero blocks the backup covers. */
  logicalBytes: number;
  packsWritten: number;
}

export interface BackupRecord {
  projectId: string;
  backupId: string;
  volumeId: string;
  name: string;
  description?: string;
  status: BackupStatus;
  failReason?: string;
  sizeBytes: number;
  blockSize: number;
  segmentBlocks: number;
  segmentCount: number;
  /** Sub-chunk size: fingerprint and finest storage granularity (version-2 backups; absent in version 1). */
  subChunkSize?: number;
  /** Blocks per extent, the chunk of data not found in the parent (version-2 backups; absent in version 1). */
  extentBlocks?: number;
  parentId?: string;
  /** The snapshot the backup read (a server backup's group snapshot); the next backup's `sinceSnapshotId`. */
  sourceSnapshotId?: string;
  domainId: string;
  kmsKeyId: string;
  /** True when the volume is encrypted with a customer KMS key (the backup is then under that key). */
  customerKey: boolean;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
  manifestPrefix: string;
  stats?: BackupStats;
  /** Free-form fields the service layer keeps with the backup (tags, job id, source type...). */
  extra?: Record<string, unknown>;
}

/** The engine's view of the catalog (DynamoDB). */
export interface BackupCatalog {
  createBackup(record: BackupRecord): Promise<void>;
  getBackup(projectId: string, backupId: string): Promise<BackupRecord | undefined>;
  /** Applies `patch`; when `expectStatus` is given the update happens only from that status. */
  updateBackup(projectId: string, backupId: string, patch: Partial<BackupRecord>, expectStatus?: BackupStatus[]): Promise<BackupRecord>;
  /** Newest backup of the volume in `status`, optionally limited to one key domain. */
  latestBackup(projectId: string, volumeId: string, status: BackupStatus, domainId?: string): Promise<BackupRecord | undefined>;
  getDomain(projectId: string, kmsKeyId: string): Promise<KeyDomainRecord | undefined>;
  /** Creates the domain unless one exists for (project, key); returns the one that is stored. */
  putDomainIfAbsent(record: KeyDomainRecord): Promise<KeyDomainRecord>;
  /** Records a finished segment's statistics (after its manifest is stored); idempotent. */
  recordSegment(projectId: string, backupId: string, segment: number, stats: BackupStats): Promise<void>;
  /** The segments recorded for the backup, with their statistics. */
  segmentStats(projectId: string, backupId: string): Promise<Array<{ segment: number; stats: BackupStats }>>;
}

export interface VolumeInfo {
  volumeId: string;
  sizeBytes: number;
  /** Customer KMS key the volume is encrypted with, if any. */
  kmsKeyId?: string;
  /** Its name, where the provider keeps one (EBS: the `Name` tag). */
  name?: string;
  /** The server it is attached to, where the provider tells (EBS); the catalog records such a volume on first use. */
  attachedServerId?: string;
}

/** A byte range of a volume. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** What a reader reads: the live volume, or a snapshot the provider took of it. */
export interface ReadSource {
  /** A snapshot from `snapshotDisks`; absent: the volume as it is now. */
  snapshotId?: string;
  /** The snapshot the parent backup read: lets the reader tell which blocks changed since (`changedRanges`). */
  sinceSnapshotId?: string;
}

export interface BlockReader {
  readonly sizeBytes: number;
  /** Fills `into` from `offset`; returns bytes read (short only at the end of the volume). */
  read(into: Buffer, offset: number): Promise<number>;
  /**
   * The ranges of [offset, offset + length) that may hold data, ascending and disjoint; the rest reads as
   * zeros and is neither read nor hashed (holes of a sparse file, unwritten EBS blocks). Absent: the
   * provider cannot tell, and everything is read.
   */
  writtenRanges?(offset: number, length: number): Promise<ByteRange[]>;
  /**
   * The ranges of [offset, offset + length) that may differ from the source's `sinceSnapshotId`, ascending
   * and disjoint; the rest is the parent's and is not read. Absent, or undefined: the provider cannot tell.
   */
  changedRanges?(offset: number, length: number): Promise<ByteRange[] | undefined>;
  close(): Promise<void>;
}

export interface BlockWriter {
  readonly sizeBytes: number;
  /** True when the target reads as zeros everywhere (new sparse image): zero blocks need no write. */
  readonly zeroed: boolean;
  write(data: Uint8Array, offset: number): Promise<void>;
  /** Reads the target back (restore skips zero blocks the target already holds as zeros). */
  read(into: Buffer, offset: number): Promise<number>;
  /** As BlockReader's: where the target may hold data; restore neither reads nor zeros the rest. Absent: cannot tell. */
  writtenRanges?(offset: number, length: number): Promise<ByteRange[]>;
  /** Makes the ranges read as zeros without writing them (punches holes); false when the target cannot. */
  discard?(ranges: ByteRange[]): Promise<boolean>;
  /** Makes the written data durable. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export type ServerStatus = 'running' | 'stopped' | 'error';

/** A disk attached to a server. */
export interface ServerDisk {
  volumeId: string;
  /** Where it is attached, e.g. `/dev/vda` or `/dev/xvdf`. */
  device: string;
  sizeBytes: number;
  /** Customer KMS key the disk is encrypted with, if any. */
  kmsKeyId?: string;
  bootable: boolean;
}

/** A server (an EC2 instance, or a group of disk images in the local inventory). */
export interface ServerInfo {
  serverId: string;
  name: string;
  status: ServerStatus;
  disks: ServerDisk[];
}

/** Snapshots of several disks of one server, taken together. */
export interface GroupSnapshot {
  /** One snapshot per disk asked for, in the order asked. */
  disks: Array<{ volumeId: string; snapshotId: string }>;
  /** True when every disk was captured at one instant (crash-consistent: the disks agree with each other). */
  crashConsistent: boolean;
  /** How: `clone` (copy-on-write), `freeze-copy` (writers held by freeze hooks during a copy), `copy` (nothing held: not consistent), `ebs`. */
  method: 'clone' | 'freeze-copy' | 'copy' | 'ebs';
  /** Milliseconds the server's writers were held. */
  freezeMs: number;
}

export class ServerNotFoundError extends Error {
  override name = 'ServerNotFoundError';
}

/** The engine's view of volumes: their blocks. */
export interface VolumeBlocks {
  describe(projectId: string, volumeId: string): Promise<VolumeInfo>;
  /** Reads the live volume, or a snapshot of it (`source.snapshotId`). */
  openReader(projectId: string, volumeId: string, source?: ReadSource): Promise<BlockReader>;
  /** Opens the restore target; `minSizeBytes` is the backup's size. */
  openWriter(projectId: string, volumeId: string, minSizeBytes: number): Promise<BlockWriter>;
}

/** Where volumes live: raw image files locally, EBS volumes and snapshots on AWS; and the servers they attach to. */
export interface VolumeProvider extends VolumeBlocks {
  /** The project's servers, with their disks. */
  listServers(projectId: string): Promise<ServerInfo[]>;
  /** Throws ServerNotFoundError. */
  describeServer(projectId: string, serverId: string): Promise<ServerInfo>;
  /** Snapshots the server's disks `volumeIds` at one instant where the provider can. */
  snapshotDisks(projectId: string, serverId: string, volumeIds: string[]): Promise<GroupSnapshot>;
  /** Releases snapshots; an unknown or already released one is no error. */
  releaseSnapshots(projectId: string, snapshotIds: string[]): Promise<void>;
  /** Stops or starts a server (a server restore stops it first and starts it after when asked to). */
  setServerPower(projectId: string, serverId: string, on: boolean): Promise<void>;
  /**
   * True when a snapshot should be kept after its backup as the base of the next incremental (EBS: the
   * next backup reads only the blocks changed since); false when it is only a copy to read from (files).
   */
  readonly keepsSnapshots: boolean;
  /**
   * Snapshots one volume for a volume backup to read; returns the snapshot id. Providers that cannot read a live
   * volume (EBS) have it; without it a volume backup reads the volume itself.
   */
  snapshotVolume?(projectId: string, volumeId: string): Promise<string>;
  /**
   * A restore that several tasks write into one target, finished once (EBS: one new snapshot, made a volume at the
   * end). Providers without it are written in place by each task (openWriter). startRestore checks first that the
   * restore can finish; a writer from snapshotWriter(..., false) stores its task's blocks only (`blocksStored`
   * counts them); finishRestore is given the sum and returns the volume that holds the data.
   */
  startRestore?(projectId: string, volumeId: string): Promise<{ snapshotId: string; sizeBytes: number }>;
  snapshotWriter?(projectId: string, volumeId: string, snapshotId: string, sizeBytes: number, finish: false): BlockWriter & { readonly blocksStored: number };
  finishRestore?(projectId: string, volumeId: string, snapshotId: string, changedBlocks: number): Promise<{ volumeId: string; instanceId?: string }>;
}

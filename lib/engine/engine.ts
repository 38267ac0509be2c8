// What every engine operation needs: the ports, the chunk pool and the geometry settings.
import type { ChunkPool } from './chunk-pool.ts';
import type { KeyDomains } from './key-domains.ts';
import type { BackupCatalog, ChunkIndex, ObjectStore, VolumeBlocks } from './ports.ts';

export interface EngineConfig {
  /** Volume block size; 512 KiB like EBS. */
  blockSize: number;
  /** Blocks per segment: the unit of parallel work (a Map iteration) and of manifest objects. */
  segmentBlocks: number;
  /** Target pack size. */
  packTargetBytes: number;
  /** Blocks read and hashed together. */
  batchBlocks: number;
  /** Pack uploads in flight per segment. */
  uploadConcurrency: number;
  /** Ranged GETs in flight per restore, and ranges opened and written at once. */
  restoreConcurrency: number;
  /** Most sealed bytes one ranged GET reads, and most plaintext it restores. */
  restoreRangeBytes: number;
}

/**
 * Memory a process needs beyond its runtime (code, V8 heaps, one isolate per chunk worker), by these settings:
 * - restore: at most restoreConcurrency sealed slots of max(restoreRangeBytes, the store's preferred read
 *   size, the largest sealed chunk) and restoreConcurrency plaintext slots of max(restoreRangeBytes, the
 *   largest chunk), rounded up to 1 MiB: 8 x 5 MiB = 40 MiB with 4 MiB extents on files, 4 x 16 MiB +
 *   4 x 5 MiB = 84 MiB on S3; whatever the volume size and however well the data compresses. Plus what
 *   each thread doing chunk work leaves before it collects, ~4 MiB (chunk-garbage.ts): a range's decrypted
 *   payloads (plaintext is decompressed straight into its slot). Four ranges in flight keep both cores busy
 *   here; six were 0.05 s faster for 20 MB more.
 * - backup: 2 batches per worker (2 inline), each a read slot and a sealed output of batchBlocks (~17 MiB
 *   the pair), plus pack bodies (pool slots of the target and header room, 17 MiB, reused across
 *   segments): one filling and up to 2 x uploadConcurrency + 1 queued or uploading, which only accumulate when
 *   uploads are slower than the CPU. Plus, per thread sealing, ~4 MiB of zstd outputs, ciphertexts and zstd
 *   contexts before it collects (chunk-garbage.ts), and the high-water mark its malloc arena keeps (~20 MB).
 * Measured in the race (npm run bench:race, 2 GiB images, two workers, bundled as npm start runs it): the
 * runtime alone is 69 MB resident on the embedded backend and 71 MB on AWS, each chunk worker 14 MB more;
 * restores peak at 182-196 MB on files and 344-349 MB on S3, full backups at 278-363 MB, incrementals at
 * 169-245 MB. A Lambda segment task runs inline (OPENVBS_CHUNK_WORKERS=0):
 * restore <= runtime + 84 MiB + 4 MiB, backup <= runtime + 34 MiB + 170 MiB + 4 MiB plus the arena; both fit
 * 512 MB, so the segment tasks' 1769 MB is chosen for their one vCPU, not for memory.
 */
export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  blockSize: 512 * 1024,
  segmentBlocks: 2048, // 1 GiB
  packTargetBytes: 16 * 1024 * 1024,
  batchBlocks: 16,
  uploadConcurrency: 4,
  restoreConcurrency: 4,
  restoreRangeBytes: 4 * 1024 * 1024,
};

export interface EngineDeps {
  store: ObjectStore;
  index: ChunkIndex;
  catalog: BackupCatalog;
  domains: KeyDomains;
  volumes: VolumeBlocks;
  pool: ChunkPool;
  config: EngineConfig;
}

export interface Progress {
  blocksDone: number;
  blocksTotal: number;
}

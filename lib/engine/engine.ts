// What every engine operation needs: the ports, the chunk pool and the geometry settings.
import type { ChunkPool } from './chunk-pool.ts';
import type { KeyDomains } from './key-domains.ts';
import type { BackupCatalog, ChunkIndex, ObjectStore, VolumeProvider } from './ports.ts';

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
  /** Ranges (ranged GET, open, write) in flight per restore. */
  restoreConcurrency: number;
  /** Most sealed bytes one ranged GET reads, and most plaintext it restores. */
  restoreRangeBytes: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  blockSize: 512 * 1024,
  segmentBlocks: 2048, // 1 GiB
  packTargetBytes: 16 * 1024 * 1024,
  batchBlocks: 16,
  uploadConcurrency: 4,
  restoreConcurrency: 6,
  restoreRangeBytes: 4 * 1024 * 1024,
};

export interface EngineDeps {
  store: ObjectStore;
  index: ChunkIndex;
  catalog: BackupCatalog;
  domains: KeyDomains;
  volumes: VolumeProvider;
  pool: ChunkPool;
  config: EngineConfig;
}

export interface Progress {
  blocksDone: number;
  blocksTotal: number;
}

// Composition root of the engine: its ports from an opened backend and the catalog's backup store.
import type { BackupStore } from '../catalog/backups.ts';
import { ChunkPool } from '../engine/chunk-pool.ts';
import { DEFAULT_ENGINE_CONFIG } from '../engine/engine.ts';
import type { EngineConfig, EngineDeps } from '../engine/engine.ts';
import { KeyDomains } from '../engine/key-domains.ts';
import type { ObjectStore, VolumeBlocks } from '../engine/ports.ts';
import type { Backend } from './backend.ts';

export interface EngineWiring {
  backend: Backend;
  backups: BackupStore;
  volumes: VolumeBlocks;
  pool?: ChunkPool;
  engine?: Partial<EngineConfig>;
  /** Wraps the object store (tests inject failures here). */
  wrapStore?: (store: ObjectStore) => ObjectStore;
}

export function createEngineDeps(w: EngineWiring): EngineDeps {
  const { backend } = w;
  return {
    store: w.wrapStore ? w.wrapStore(backend.objects) : backend.objects,
    index: backend.chunkIndex,
    catalog: w.backups,
    domains: new KeyDomains(w.backups, backend.keys, backend.serviceKeyId),
    volumes: w.volumes,
    pool: w.pool ?? new ChunkPool(),
    config: { ...DEFAULT_ENGINE_CONFIG, ...w.engine },
  };
}

/** Engine settings that may come from the environment (tests use small segments). */
export function engineSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<EngineConfig> {
  const settings: Partial<EngineConfig> = {};
  if (env.OPENVBS_SEGMENT_BLOCKS) settings.segmentBlocks = Number(env.OPENVBS_SEGMENT_BLOCKS);
  return settings;
}

/** OPENVBS_CHUNK_WORKERS: chunk worker threads (0 = inline); default one per core. */
export function chunkWorkersFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return env.OPENVBS_CHUNK_WORKERS === undefined ? undefined : Number(env.OPENVBS_CHUNK_WORKERS);
}

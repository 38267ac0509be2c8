// Composition root for the engine: AWS adapters behind the ports, from the service configuration.
import type { AwsClients } from '../aws/clients.ts';
import { DynamoChunkIndex } from '../aws/dynamo-chunk-index.ts';
import { KmsKeyService } from '../aws/kms-key-service.ts';
import { S3ObjectStore } from '../aws/s3-object-store.ts';
import { DynamoBackupCatalog } from '../catalog/dynamo-catalog.ts';
import type { ServiceConfig } from '../config.ts';
import { ChunkPool } from './chunk-pool.ts';
import { DEFAULT_ENGINE_CONFIG } from './engine.ts';
import type { EngineConfig, EngineDeps } from './engine.ts';
import { KeyDomains } from './key-domains.ts';
import type { ObjectStore, VolumeProvider } from './ports.ts';

export interface EngineWiring {
  config: ServiceConfig;
  clients: AwsClients;
  volumes: VolumeProvider;
  pool?: ChunkPool;
  engine?: Partial<EngineConfig>;
  /** Wraps the object store (tests inject failures here). */
  wrapStore?: (store: ObjectStore) => ObjectStore;
}

export function createEngineDeps(w: EngineWiring): EngineDeps {
  const catalog = new DynamoBackupCatalog(w.clients.ddb, w.config.catalogTable);
  const s3 = new S3ObjectStore(w.clients.s3, w.config.bucket);
  return {
    store: w.wrapStore ? w.wrapStore(s3) : s3,
    index: new DynamoChunkIndex(w.clients.ddb, w.config.chunkTable),
    catalog,
    domains: new KeyDomains(catalog, new KmsKeyService(w.clients.kms), w.config.serviceKeyId),
    volumes: w.volumes,
    pool: w.pool ?? new ChunkPool(),
    config: { ...DEFAULT_ENGINE_CONFIG, ...w.engine },
  };
}

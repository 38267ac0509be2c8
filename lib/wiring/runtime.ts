// Composition root of one process: the backend's adapters, the catalog stores over its table, and (on
// first use) the workflow steps' dependencies with the engine and its chunk pool. A Lambda container
// builds it from its environment once; the local runtime and the tests open their own and install it,
// so the handlers they run in-process share it.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AwsClients } from '../aws/clients.ts';
import { createCatalogStores } from '../catalog/stores.ts';
import type { CatalogStores } from '../catalog/stores.ts';
import { loadServiceConfig } from '../config.ts';
import type { ServiceConfig } from '../config.ts';
import { ChunkPool } from '../engine/chunk-pool.ts';
import type { EngineConfig } from '../engine/engine.ts';
import type { ObjectStore, VolumeBlocks, VolumeProvider } from '../engine/ports.ts';
import { LocalVolumeProvider } from '../volumes/local-provider.ts';
import type { TaskDeps } from '../workflows/steps/deps.ts';
import { openBackend } from './backend.ts';
import type { Backend } from './backend.ts';
import { chunkWorkersFromEnv, createEngineDeps, engineSettingsFromEnv } from './engine.ts';
import { openVolumeProvider, volumeProviderKind } from './volumes.ts';

export interface RuntimeOptions {
  clients?: AwsClients;
  /** Chunk worker threads; default from OPENVBS_CHUNK_WORKERS, else one per core. */
  workers?: number;
  engine?: Partial<EngineConfig>;
  /** Wraps the object store the engine uses (tests inject faults here). */
  wrapStore?: (store: ObjectStore) => ObjectStore;
  /** Where volumes and servers live; default the local provider over the catalog's inventory. */
  provider?: VolumeProvider;
  /** What the engine reads and writes blocks through; default the provider (benchmarks time it here). */
  volumes?: VolumeBlocks;
}

export interface Runtime {
  readonly config: ServiceConfig;
  readonly backend: Backend;
  readonly stores: CatalogStores;
  /** Where volumes and servers live (the engine reads their blocks through it; services and steps its servers). */
  readonly volumes: VolumeProvider;
  /** The workflow steps' dependencies; the engine and its chunk pool start on first call. */
  taskDeps(): TaskDeps;
  close(): Promise<void>;
}

/**
 * The local provider: a volume id means the image or device the inventory records for it, servers are the
 * inventory's, and group snapshots are copies under `<dataDir>/snapshots/` (the home in local mode, where
 * the managed images are, so clones work; the system's temporary folder when none is given).
 */
export function inventoryVolumes(stores: CatalogStores, dataDir: string = join(tmpdir(), 'openvbs')): VolumeProvider {
  return new LocalVolumeProvider({ volumes: stores.volumes, servers: stores.servers, dataDir });
}

export async function openRuntime(config: ServiceConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  const backend = await openBackend(config, options.clients);
  const stores = createCatalogStores(backend.table);
  // The file provider over the inventory unless OPENVBS_VOLUME_PROVIDER names another (the stack sets `ebs`).
  const local = () => inventoryVolumes(stores, config.backend === 'embedded' ? config.home : undefined);
  const volumes = options.provider ?? (await openVolumeProvider({ local }));
  let tasks: TaskDeps | undefined;
  let pool: ChunkPool | undefined;
  return {
    config,
    backend,
    stores,
    volumes,
    taskDeps() {
      if (!tasks) {
        pool = new ChunkPool({ workers: options.workers ?? chunkWorkersFromEnv() });
        tasks = {
          engine: createEngineDeps({
            backend,
            backups: stores.backups,
            volumes: options.volumes ?? volumes,
            pool,
            engine: { ...engineSettingsFromEnv(), ...options.engine },
            ...(options.wrapStore ? { wrapStore: options.wrapStore } : {}),
          }),
          backups: stores.backups,
          jobs: stores.jobs,
          volumes: stores.volumes,
          gcQueue: stores.gcQueue,
          checkpoints: stores.checkpoints,
          provider: volumes,
          ...(backend.notifier ? { notifier: backend.notifier } : {}),
        };
      }
      return tasks;
    },
    async close() {
      await pool?.close();
      await backend.close();
    },
  };
}

let installed: Promise<Runtime> | undefined;

/** The process-wide runtime: the installed one, or one built from the environment on first use. */
export function processRuntime(): Promise<Runtime> {
  installed ??= fromEnvironment();
  return installed;
}

/** Makes `runtime` the one the in-process handlers use (the local runtime, tests); undefined uninstalls. */
export function installProcessRuntime(runtime: Runtime | undefined): void {
  installed = runtime ? Promise.resolve(runtime) : undefined;
}

async function fromEnvironment(): Promise<Runtime> {
  const config = loadServiceConfig();
  if (config.backend !== 'aws') return openRuntime(config);
  // Loaded only here: an embedded process never loads the AWS SDK or the tracer.
  const [{ awsClients }, { tracer }] = await Promise.all([import('../aws/clients.ts'), import('../workflows/observability.ts')]);
  const clients = awsClients();
  // Every AWS call becomes an X-Ray subsegment on Lambda (a no-op where tracing is off).
  // (`ddb` is left out: the document client shares the DynamoDB client's middleware stack.)
  const { ddb: _shared, ...sdkClients } = clients;
  for (const client of Object.values(sdkClients)) tracer.captureAWSv3Client(client);
  if (volumeProviderKind() === 'ebs') {
    const { volumeClients } = await import('../aws/volume-clients.ts');
    for (const client of Object.values(volumeClients())) tracer.captureAWSv3Client(client);
  }
  return openRuntime(config, { clients });
}

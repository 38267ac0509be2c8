// Builds the workflow steps' dependencies from the environment, once per process (a Lambda container,
// or the local runtime, which runs the same handlers in-process).
import type { AwsClients } from '../aws/clients.ts';
import { awsClients } from '../aws/clients.ts';
import { DynamoBackupCatalog } from '../catalog/dynamo-catalog.ts';
import { JobStore } from '../catalog/jobs.ts';
import { VolumeStore } from '../catalog/volumes.ts';
import type { ServiceConfig } from '../config.ts';
import { loadServiceConfig } from '../config.ts';
import { ChunkPool } from '../engine/chunk-pool.ts';
import type { EngineConfig } from '../engine/engine.ts';
import { createEngineDeps } from '../engine/wiring.ts';
import { SnsNotifier } from '../notify/notifier.ts';
import { tracer } from './observability.ts';
import { FileVolumeProvider } from '../volumes/file-provider.ts';
import type { TaskDeps } from './tasks.ts';

export interface TaskDepsOptions {
  pool?: ChunkPool;
  engine?: Partial<EngineConfig>;
}

/** Engine settings that may come from the environment (tests use small segments). */
export function engineSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<EngineConfig> {
  const settings: Partial<EngineConfig> = {};
  if (env.OPENVBS_SEGMENT_BLOCKS) settings.segmentBlocks = Number(env.OPENVBS_SEGMENT_BLOCKS);
  return settings;
}

export function buildTaskDeps(config: ServiceConfig, clients: AwsClients, options: TaskDepsOptions = {}): TaskDeps {
  const catalog = new DynamoBackupCatalog(clients.ddb, config.catalogTable);
  const volumes = new VolumeStore(clients.ddb, config.catalogTable);
  const provider = new FileVolumeProvider(async (projectId, volumeId) => {
    const v = await volumes.get(projectId, volumeId);
    return v && { path: v.path, kmsKeyId: v.kmsKeyId, sizeBytes: v.sizeBytes };
  });
  const workers = process.env.OPENVBS_CHUNK_WORKERS === undefined ? undefined : Number(process.env.OPENVBS_CHUNK_WORKERS);
  return {
    engine: createEngineDeps({ config, clients, volumes: provider, pool: options.pool ?? new ChunkPool({ workers }), engine: options.engine }),
    catalog,
    jobs: new JobStore(clients.ddb, config.catalogTable),
    volumes,
    notifier: config.topicArn ? new SnsNotifier(clients.sns, config.topicArn) : undefined,
    ddb: clients.ddb,
    catalogTable: config.catalogTable,
  };
}

let shared: TaskDeps | undefined;

/** The process-wide dependencies, built from the environment on first use. */
export function taskDeps(): TaskDeps {
  if (!shared) {
    const clients = awsClients();
    // Every AWS call becomes an X-Ray subsegment on Lambda (a no-op where tracing is off).
    // (`ddb` is left out: the document client shares the DynamoDB client's middleware stack.)
    const { ddb: _shared, ...sdkClients } = clients;
    for (const client of Object.values(sdkClients)) tracer.captureAWSv3Client(client);
    shared = buildTaskDeps(loadServiceConfig(), clients, { engine: engineSettingsFromEnv() });
  }
  return shared;
}

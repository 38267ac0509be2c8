// Composition root of the storage side: the adapters behind every port, for one of the two backends.
// Everything that runs the service (Lambda handlers, the local runtime, tests, benchmarks) opens its
// adapters here and nowhere else.
//
// Embedded layout under OPENVBS_HOME:
//   catalog.db            SQLite: the catalog table (backups, key domains, jobs, volumes, tokens, GC queue)
//   chunks.db             SQLite: the chunk index
//   objects/<key>         packs and manifests, one file per object
//   keys/                 the master keys (one random 256-bit key per file, mode 0600)
//   notifications.jsonl   every notification, one JSON line each
//   deliveries.jsonl      every delivery attempt to a subscription (webhook, email, recorded SMS)
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AwsClients } from '../aws/clients.ts';
import type { Table } from '../catalog/table.ts';
import type { AwsServiceConfig, BackendKind, EmbeddedServiceConfig, ServiceConfig } from '../config.ts';
import type { ChunkIndex, KeyService, ObjectStore } from '../engine/ports.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { SubscriptionManager } from '../notify/subscriptions.ts';

export interface Backend {
  readonly kind: BackendKind;
  readonly table: Table;
  readonly chunkIndex: ChunkIndex;
  readonly objects: ObjectStore;
  readonly keys: KeyService;
  readonly notifier?: Notifier;
  /** Makes notification subscriptions real (SNS, or local delivery); absent without a topic. */
  readonly subscriptions?: SubscriptionManager;
  /** The key that wraps the data keys of volumes without a customer key. */
  readonly serviceKeyId: string;
  close(): Promise<void>;
}

/** The alias of the embedded backend's own master key (created on first open). */
export const EMBEDDED_SERVICE_KEY_ALIAS = 'alias/openvbs-service';

export function embeddedPaths(home: string) {
  return {
    catalog: join(home, 'catalog.db'),
    chunkIndex: join(home, 'chunks.db'),
    objects: join(home, 'objects'),
    keys: join(home, 'keys'),
    notifications: join(home, 'notifications.jsonl'),
    deliveries: join(home, 'deliveries.jsonl'),
    volumes: join(home, 'volumes'),
  };
}

export async function openBackend(config: ServiceConfig, clients?: AwsClients): Promise<Backend> {
  return config.backend === 'embedded' ? openEmbeddedBackend(config) : openAwsBackend(config, clients);
}

// The adapters of the backend not in use are never loaded (dynamic imports): a Lambda never opens SQLite,
// and an embedded process never loads the AWS SDK (about 250 ms and 85 MB).

export async function openEmbeddedBackend(config: EmbeddedServiceConfig | string): Promise<Backend> {
  const home = typeof config === 'string' ? config : config.home;
  const paths = embeddedPaths(home);
  await mkdir(home, { recursive: true, mode: 0o700 });
  const [{ SqliteTable }, { SqliteChunkIndex }, { FsObjectStore }, { LocalKeyService }, { OutboxNotifier, deliverySettingsFromEnv }, { TableSubscriptionStore }, { LocalSubscriptionManager }] =
    await Promise.all([
      import('../embedded/sqlite-table.ts'),
      import('../embedded/sqlite-chunk-index.ts'),
      import('../embedded/fs-object-store.ts'),
      import('../embedded/local-key-service.ts'),
      import('../embedded/outbox-notifier.ts'),
      import('../catalog/subscriptions.ts'),
      import('../notify/subscriptions.ts'),
    ]);
  const table = new SqliteTable(paths.catalog);
  const chunkIndex = new SqliteChunkIndex(paths.chunkIndex);
  const keys = new LocalKeyService(paths.keys);
  const serviceKey =
    (await keys.describeKey(EMBEDDED_SERVICE_KEY_ALIAS)) ??
    (await keys.createKey({ alias: EMBEDDED_SERVICE_KEY_ALIAS, description: 'OpenVBS service key (embedded backend)' }));
  // Delivers to the project's subscriptions itself (webhooks, SMTP email; SMS recorded).
  const notifier = new OutboxNotifier(paths.notifications, {
    subscriptions: new TableSubscriptionStore(table),
    deliveryLog: paths.deliveries,
    delivery: deliverySettingsFromEnv(),
  });
  return {
    kind: 'embedded',
    table,
    chunkIndex,
    objects: new FsObjectStore(paths.objects),
    keys,
    notifier,
    subscriptions: new LocalSubscriptionManager({ allowHttp: process.env.OPENVBS_ALLOW_HTTP_WEBHOOKS === '1' }),
    serviceKeyId: serviceKey.arn,
    async close() {
      await notifier.close();
      table.close();
      chunkIndex.close();
    },
  };
}

export async function openAwsBackend(config: AwsServiceConfig, clients?: AwsClients): Promise<Backend> {
  const aws = clients ?? (await import('../aws/clients.ts')).awsClients();
  const [{ DynamoTable }, { DynamoChunkIndex }, { S3ObjectStore }, { KmsKeyService }, { SnsNotifier }, { SnsSubscriptionManager }] = await Promise.all([
    import('../aws/dynamo-table.ts'),
    import('../aws/dynamo-chunk-index.ts'),
    import('../aws/s3-object-store.ts'),
    import('../aws/kms-key-service.ts'),
    import('../aws/sns-notifier.ts'),
    import('../aws/sns-subscriptions.ts'),
  ]);
  return {
    kind: 'aws',
    table: new DynamoTable(aws.ddb, config.catalogTable),
    chunkIndex: new DynamoChunkIndex(aws.ddb, config.chunkTable),
    objects: new S3ObjectStore(aws.s3, config.bucket),
    keys: new KmsKeyService(aws.kms),
    ...(config.topicArn ? { notifier: new SnsNotifier(aws.sns, config.topicArn), subscriptions: new SnsSubscriptionManager(aws.sns, config.topicArn) } : {}),
    serviceKeyId: config.serviceKeyId,
    async close() {},
  };
}

// The two backends a benchmark runs the engine on, opened through the service's own composition root
// (lib/wiring/backend.ts): embedded in a fresh home folder, or AWS on a moto emulator this process starts,
// with freshly provisioned resources. The wiring is imported only when a backend is opened, so a benchmark
// can measure CPU work first in a process without the AWS SDK loaded.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BackupStore } from '../../lib/catalog/backups.ts';
import type { BackendKind } from '../../lib/config.ts';
import type { Backend } from '../../lib/wiring/backend.ts';
import { startMoto } from '../../scripts/moto.mjs';

export interface BenchBackend {
  kind: BackendKind;
  /** How the tables name it. */
  label: string;
  backend: Backend;
  backups: BackupStore;
  close(): Promise<void>;
}

export function parseBackendKinds(value: string): BackendKind[] {
  const kinds = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const kind of kinds) if (kind !== 'embedded' && kind !== 'aws') throw new Error(`unknown backend ${JSON.stringify(kind)}: embedded or aws`);
  return kinds as BackendKind[];
}

/** Opens `kind` with its state under `dir`; closing it also stops the emulator it started. */
export async function openBenchBackend(kind: BackendKind, dir: string): Promise<BenchBackend> {
  const { createCatalogStores } = await import('../../lib/catalog/stores.ts');
  if (kind === 'embedded') {
    const { openEmbeddedBackend } = await import('../../lib/wiring/backend.ts');
    const backend = await openEmbeddedBackend(join(dir, 'home'));
    return { kind, label: 'embedded (SQLite, files, key files)', backend, backups: createCatalogStores(backend.table).backups, close: () => backend.close() };
  }
  const moto = await startMoto({ quiet: true });
  try {
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID = 'bench';
    process.env.AWS_SECRET_ACCESS_KEY = 'bench';
    delete process.env.AWS_PROFILE;
    const [{ createClients }, { provisionLocalResources }, { openAwsBackend }] = await Promise.all([
      import('../../lib/aws/clients.ts'),
      import('../../lib/local/provision.ts'),
      import('../../lib/wiring/backend.ts'),
    ]);
    const clients = createClients();
    const config = await provisionLocalResources(clients, `bench-${randomBytes(4).toString('hex')}`);
    const backend = await openAwsBackend(config, clients);
    return {
      kind,
      label: 'aws (S3, DynamoDB, KMS on moto, loopback)',
      backend,
      backups: createCatalogStores(backend.table).backups,
      async close() {
        await backend.close();
        await moto.stop();
      },
    };
  } catch (err) {
    await moto.stop();
    throw err;
  }
}

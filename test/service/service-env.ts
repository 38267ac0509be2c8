// The services on real embedded adapters: catalog stores on an in-memory SQLite table, a local key
// service and a data folder in a temporary directory, and a WorkflowStarter that only records what it
// was asked to start (the workflows themselves are tested end to end elsewhere). Nothing here talks to AWS.
import { inventoryVolumes } from '../../lib/wiring/runtime.ts';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createCatalogStores } from '../../lib/catalog/stores.ts';
import { LocalKeyService } from '../../lib/embedded/local-key-service.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';
import type { BackupRecord } from '../../lib/engine/ports.ts';
import { ServiceError } from '../../lib/service/errors.ts';
import { createServices } from '../../lib/service/factory.ts';
import type { ServiceDeps } from '../../lib/service/factory.ts';
import type { WorkflowName, WorkflowStarter } from '../../lib/workflows/registry.ts';

export class RecordingStarter implements WorkflowStarter {
  readonly calls: Array<{ workflow: WorkflowName; name: string; input: unknown }> = [];
  /** When set, the next start fails with it. */
  failNext: Error | undefined;

  async start(workflow: WorkflowName, name: string, input: unknown): Promise<{ executionArn: string }> {
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    this.calls.push({ workflow, name, input });
    return { executionArn: `arn:aws:states:us-east-1:000000000000:execution:${workflow}:${name}` };
  }

  /** Executions asked to stop, with the reason. */
  readonly stops: Array<{ executionArn: string; reason: { error: string; cause: string } }> = [];

  async stop(executionArn: string, reason: { error: string; cause: string }): Promise<void> {
    this.stops.push({ executionArn, reason });
  }

  last() {
    return this.calls[this.calls.length - 1]!;
  }
}

type Settings = Pick<ServiceDeps, 'quotas' | 'allowPathRegistration'>;

export async function createServiceEnv(settings: Settings = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-service-test-'));
  const table = new SqliteTable(':memory:');
  const stores = createCatalogStores(table);
  const keys = new LocalKeyService(join(dir, 'keys'));
  const workflows = new RecordingStarter();
  const dataDir = join(dir, 'data');
  const provider = inventoryVolumes(stores);
  const build = (more: Settings = {}) => createServices({ stores, keys, workflows, provider, dataDir, availabilityZone: 'test-az', ...settings, ...more });
  return {
    dir,
    dataDir,
    stores,
    keys,
    workflows,
    services: build(),
    /** Other services on the same stores with other settings (quotas...). */
    build,
    async close() {
      table.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type ServiceEnv = Awaited<ReturnType<typeof createServiceEnv>>;

let seq = 0;

/** A backup record as the engine writes it (committed unless `status` says otherwise). */
export function backupRecord(projectId: string, over: Partial<BackupRecord> = {}): BackupRecord {
  seq++;
  const backupId = over.backupId ?? `b${String(seq).padStart(4, '0')}-${randomBytes(4).toString('hex')}`;
  const createdAt = over.createdAt ?? new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString();
  const sizeBytes = over.sizeBytes ?? 1536 * 1024 * 1024;
  return {
    projectId,
    backupId,
    volumeId: 'vol-1',
    name: `backup-${seq}`,
    status: 'available',
    sizeBytes,
    blockSize: 512 * 1024,
    segmentBlocks: 2048,
    segmentCount: Math.max(1, Math.ceil(sizeBytes / (512 * 1024) / 2048)),
    domainId: 'dom-1',
    kmsKeyId: 'arn:aws:kms:us-east-1:000000000000:key/service',
    customerKey: false,
    createdAt,
    updatedAt: createdAt,
    completedAt: createdAt,
    manifestPrefix: `manifests/${projectId}/${backupId}/`,
    stats: {
      blocks: 3072,
      zeroBlocks: 1000,
      chunkCount: 2072,
      reusedFromParent: 0,
      dedupHits: 12,
      newChunks: 2060,
      storedBytes: 600 * 1024 * 1024,
      logicalBytes: 1036 * 1024 * 1024,
      packsWritten: 38,
    },
    extra: { jobId: `job-${backupId}`, tags: [], ST: 0 },
    ...over,
  };
}

export const projectId = () => randomBytes(16).toString('hex');

/** Expects the promise to fail with a ServiceError of this status and code; returns the error. */
export async function expectServiceError(p: Promise<unknown>, httpStatus: number, code: string): Promise<ServiceError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(ServiceError);
  const serviceError = err as ServiceError;
  expect({ status: serviceError.httpStatus, code: serviceError.code }).toEqual({ status: httpStatus, code });
  return serviceError;
}

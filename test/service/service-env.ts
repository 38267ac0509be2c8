// A VbsService on the run's emulator with freshly provisioned, uniquely named resources, a temporary data
// folder, and a WorkflowStarter that only records what it was asked to start (the workflows themselves
// are tested end to end elsewhere).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients } from '../../lib/aws/clients.ts';
import { DynamoBackupCatalog } from '../../lib/catalog/dynamo-catalog.ts';
import { JobStore } from '../../lib/catalog/jobs.ts';
import { TokenStore } from '../../lib/catalog/tokens.ts';
import { VolumeStore } from '../../lib/catalog/volumes.ts';
import type { BackupRecord } from '../../lib/engine/ports.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';
import { createVbsService } from '../../lib/service/factory.ts';
import type { QuotaSettings } from '../../lib/service/vbs-service.ts';
import type { WorkflowName, WorkflowStarter } from '../../lib/workflows/contracts.ts';

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

  last() {
    return this.calls[this.calls.length - 1]!;
  }
}

export async function createServiceEnv(options: { quotas?: Partial<QuotaSettings>; allowPathRegistration?: boolean } = {}) {
  const clients = createClients();
  const config = await provisionLocalResources(clients, `t${randomBytes(5).toString('hex')}`);
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-service-test-'));
  const workflows = new RecordingStarter();
  const build = (more: { quotas?: Partial<QuotaSettings>; allowPathRegistration?: boolean } = {}) =>
    createVbsService({ config, clients, workflows, dataDir: join(dir, 'data'), availabilityZone: 'test-az', ...options, ...more });
  return {
    clients,
    config,
    dir,
    workflows,
    service: build(),
    /** Another service on the same resources with other settings (quotas...). */
    build,
    catalog: new DynamoBackupCatalog(clients.ddb, config.catalogTable),
    jobs: new JobStore(clients.ddb, config.catalogTable),
    volumes: new VolumeStore(clients.ddb, config.catalogTable),
    tokens: new TokenStore(clients.ddb, config.catalogTable),
    async close() {
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

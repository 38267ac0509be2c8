// Builds the VBS service from configuration: the catalog, job, volume and token stores all live in the
// catalog table. Used by the api Lambda and by the local runtime.
import type { AwsClients } from '../aws/clients.ts';
import { DynamoBackupCatalog } from '../catalog/dynamo-catalog.ts';
import { JobStore } from '../catalog/jobs.ts';
import { TokenStore } from '../catalog/tokens.ts';
import { VolumeStore } from '../catalog/volumes.ts';
import type { ServiceConfig } from '../config.ts';
import type { WorkflowStarter } from '../workflows/contracts.ts';
import { VbsService } from './vbs-service.ts';
import type { QuotaSettings } from './vbs-service.ts';

export interface CreateVbsServiceOptions {
  config: ServiceConfig;
  clients: AwsClients;
  workflows: WorkflowStarter;
  /** Managed volume images go to `<dataDir>/volumes/<project>/`. */
  dataDir: string;
  quotas?: Partial<QuotaSettings>;
  /** Default true (local mode). */
  allowPathRegistration?: boolean;
  availabilityZone?: string;
}

export function createVbsService(options: CreateVbsServiceOptions): VbsService {
  const { config, clients } = options;
  return new VbsService({
    catalog: new DynamoBackupCatalog(clients.ddb, config.catalogTable),
    jobs: new JobStore(clients.ddb, config.catalogTable),
    volumes: new VolumeStore(clients.ddb, config.catalogTable),
    tokens: new TokenStore(clients.ddb, config.catalogTable),
    workflows: options.workflows,
    dataDir: options.dataDir,
    ...(options.quotas ? { quotas: options.quotas } : {}),
    ...(options.allowPathRegistration !== undefined ? { allowPathRegistration: options.allowPathRegistration } : {}),
    ...(options.availabilityZone ? { availabilityZone: options.availabilityZone } : {}),
  });
}

/** Quotas from OPENVBS_QUOTA_BACKUPS / OPENVBS_QUOTA_BACKUP_GIGABYTES (integers; -1 or unset = unlimited). */
export function quotasFromEnv(env: NodeJS.ProcessEnv = process.env): QuotaSettings {
  const read = (name: string) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return -1;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < -1) throw new Error(`${name} must be an integer >= -1`);
    return n;
  };
  return { backups: read('OPENVBS_QUOTA_BACKUPS'), backupGigabytes: read('OPENVBS_QUOTA_BACKUP_GIGABYTES') };
}

// Builds the services from their stores and ports. The composition roots (the api Lambda, the local
// runtime, tests) choose the adapters; nothing here knows whether they are DynamoDB or SQLite.
import type { CatalogStores } from '../catalog/stores.ts';
import type { KeyService, VolumeProvider } from '../engine/ports.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { SubscriptionManager } from '../notify/subscriptions.ts';
import { VolumeInventory } from '../volumes/inventory.ts';
import { ServerInventory } from '../volumes/servers.ts';
import { systemClock } from '../util/clock.ts';
import type { Clock } from '../util/clock.ts';
import type { WorkflowStarter } from '../workflows/registry.ts';
import { BackupService } from './backups.ts';
import type { QuotaSettings } from './backups.ts';
import { JobService } from './jobs.ts';
import { KeyAdminService } from './keys.ts';
import { CsbsPolicyService, serverBackupsForPolicies } from './csbs-policies.ts';
import { createPolicyService } from './policies.ts';
import type { PolicyService } from './policies.ts';
import { ServerBackupService } from './server-backups.ts';
import { SharingService } from './sharing.ts';
import { SubscriptionService } from './subscriptions.ts';
import { TokenService } from './tokens.ts';

export interface ServiceDeps {
  stores: CatalogStores;
  keys: KeyService;
  workflows: WorkflowStarter;
  /** Servers and their disks (server backups describe, snapshot and power them through it). */
  provider: VolumeProvider;
  /** A server restore refuses a running server (local); on EC2 the restore stops it. Default true. */
  restoreNeedsStoppedServer?: boolean;
  /** Managed volume images go to `<dataDir>/volumes/<project>/`. */
  dataDir: string;
  quotas?: Partial<QuotaSettings>;
  /** Default true (local mode). */
  allowPathRegistration?: boolean;
  /** What backups report as `availability_zone`; default `local`. */
  availabilityZone?: string;
  /** Makes notification subscriptions real (the backend's); without it they are refused. */
  subscriptionManager?: SubscriptionManager;
  /** What policies and retention read as now; default the system clock. */
  clock?: Clock;
  /** Where policy runs report their end (event `policy`); without it they are not notified. */
  notifier?: Notifier;
}

export interface Services {
  backups: BackupService;
  volumes: VolumeInventory;
  servers: ServerInventory;
  serverBackups: ServerBackupService;
  tokens: TokenService;
  jobs: JobService;
  keys: KeyAdminService;
  subscriptions: SubscriptionService;
  sharing: SharingService;
  policies: PolicyService;
  csbsPolicies: CsbsPolicyService;
}

export function createServices(deps: ServiceDeps): Services {
  const { stores } = deps;
  const backups = new BackupService({
    backups: stores.backups,
    jobs: stores.jobs,
    volumes: stores.volumes,
    workflows: deps.workflows,
    provider: deps.provider,
    shares: stores.shares,
    ...(deps.quotas ? { quotas: deps.quotas } : {}),
    ...(deps.availabilityZone ? { availabilityZone: deps.availabilityZone } : {}),
  });
  const serverBackups = new ServerBackupService({
    checkpoints: stores.checkpoints,
    backups: stores.backups,
    jobs: stores.jobs,
    volumes: stores.volumes,
    provider: deps.provider,
    workflows: deps.workflows,
    restoreNeedsStoppedServer: deps.restoreNeedsStoppedServer ?? true,
  });
  // One runner (and tick) for VBS and CSBS policies: volumes through the backup service, servers through the server backup service.
  const policies = createPolicyService({
    stores,
    backups,
    resources: { server: serverBackupsForPolicies(serverBackups, stores) },
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(deps.availabilityZone ? { availabilityZone: deps.availabilityZone } : {}),
    ...(deps.notifier ? { notifier: deps.notifier } : {}),
  });
  return {
    backups,
    volumes: new VolumeInventory({
      volumes: stores.volumes,
      keys: deps.keys,
      dataDir: deps.dataDir,
      // A volume created from a backup restores it through the backup service (locks, statuses, the job).
      backups,
      ...(deps.allowPathRegistration !== undefined ? { allowPathRegistration: deps.allowPathRegistration } : {}),
    }),
    servers: new ServerInventory({ servers: stores.servers, volumes: stores.volumes }),
    serverBackups,
    tokens: new TokenService(stores.tokens),
    jobs: new JobService(stores.jobs, deps.workflows),
    keys: new KeyAdminService(deps.keys),
    subscriptions: new SubscriptionService(stores.subscriptions, deps.subscriptionManager),
    policies,
    csbsPolicies: new CsbsPolicyService({ policies: stores.policies, checkpoints: stores.checkpoints, provider: deps.provider, runner: policies.runner, clock: deps.clock ?? systemClock }),
    sharing: new SharingService({ shares: stores.shares, backups: stores.backups, ...(deps.availabilityZone ? { availabilityZone: deps.availabilityZone } : {}) }),
  };
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

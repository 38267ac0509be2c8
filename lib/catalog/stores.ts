// Every catalog store over one table: what the services and workflow steps are given.
import { TableBackupStore } from './backups.ts';
import { TableCheckpointStore } from './checkpoints.ts';
import type { CheckpointStore } from './checkpoints.ts';
import type { BackupStore } from './backups.ts';
import { TableGcQueue } from './gc-queue.ts';
import { TablePolicyStore } from './policies.ts';
import type { PolicyStore } from './policies.ts';
import type { GcQueue } from './gc-queue.ts';
import { TableJobStore } from './jobs.ts';
import type { JobStore } from './jobs.ts';
import { TableServerStore } from './servers.ts';
import { TableShareStore } from './shares.ts';
import type { ShareStore } from './shares.ts';
import type { ServerStore } from './servers.ts';
import { TableSubscriptionStore } from './subscriptions.ts';
import type { SubscriptionStore } from './subscriptions.ts';
import type { Table } from './table.ts';
import { TableTokenStore } from './tokens.ts';
import type { TokenStore } from './tokens.ts';
import { TableVolumeStore } from './volumes.ts';
import type { VolumeStore } from './volumes.ts';

export interface CatalogStores {
  backups: BackupStore;
  jobs: JobStore;
  volumes: VolumeStore;
  servers: ServerStore;
  tokens: TokenStore;
  gcQueue: GcQueue;
  checkpoints: CheckpointStore;
  policies: PolicyStore;
  shares: ShareStore;
  subscriptions: SubscriptionStore;
}

export function createCatalogStores(table: Table): CatalogStores {
  return {
    backups: new TableBackupStore(table),
    jobs: new TableJobStore(table),
    volumes: new TableVolumeStore(table),
    servers: new TableServerStore(table),
    tokens: new TableTokenStore(table),
    gcQueue: new TableGcQueue(table),
    checkpoints: new TableCheckpointStore(table),
    policies: new TablePolicyStore(table),
    shares: new TableShareStore(table),
    subscriptions: new TableSubscriptionStore(table),
  };
}

// What the workflow steps depend on: store interfaces and the engine's ports, never an adapter.
import type { BackupStore } from '../../catalog/backups.ts';
import type { GcQueue } from '../../catalog/gc-queue.ts';
import type { JobStore } from '../../catalog/jobs.ts';
import type { VolumeStore } from '../../catalog/volumes.ts';
import type { EngineDeps } from '../../engine/engine.ts';
import type { Notifier } from '../../notify/notifier.ts';

export interface TaskDeps {
  engine: EngineDeps;
  backups: BackupStore;
  jobs: JobStore;
  volumes: VolumeStore;
  gcQueue: GcQueue;
  notifier?: Notifier;
}

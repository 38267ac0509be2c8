// What the workflow steps depend on: store interfaces and the engine's ports, never an adapter.
import type { BackupStore } from '../../catalog/backups.ts';
import type { CheckpointStore } from '../../catalog/checkpoints.ts';
import type { GcQueue } from '../../catalog/gc-queue.ts';
import type { JobStore } from '../../catalog/jobs.ts';
import type { VolumeStore } from '../../catalog/volumes.ts';
import type { EngineDeps } from '../../engine/engine.ts';
import type { VolumeProvider } from '../../engine/ports.ts';
import type { Notifier } from '../../notify/notifier.ts';

export interface TaskDeps {
  engine: EngineDeps;
  backups: BackupStore;
  jobs: JobStore;
  volumes: VolumeStore;
  gcQueue: GcQueue;
  checkpoints: CheckpointStore;
  /** Servers, group snapshots and power (the engine reads blocks through `engine.volumes`). */
  provider: VolumeProvider;
  notifier?: Notifier;
}

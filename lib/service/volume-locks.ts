// Taking a volume for a job, as every service that starts one does: a lock whose job has ended (or was never
// written) is released first, and a volume that is busy answers VolumeBackup.0012.
//
// Volumes the provider keeps outside the catalog (EBS volumes of the project, by the ownership rule of
// lib/aws/ebs-provider.ts) are recorded in the catalog on first use and refreshed from the provider while no job
// holds them (VolumeStore.adopt): locks, statuses and the checks are then the same as for local volumes. The
// file provider's volumes are the catalog's own, so for them nothing changes.
import type { JobStore } from '../catalog/jobs.ts';
import { VolumeLockedError } from '../catalog/volumes.ts';
import type { VolumeRecord, VolumeStatus, VolumeStore } from '../catalog/volumes.ts';
import type { VolumeInfo, VolumeProvider } from '../engine/ports.ts';
import { conflict, volumeNotFound } from './errors.ts';

/** A lock whose job was never written is stale after this long (a job is written right after its lock). */
const STALE_LOCK_MS = 60_000;

export class VolumeLocks {
  private readonly volumes: VolumeStore;
  private readonly jobs: JobStore;
  private readonly provider: Pick<VolumeProvider, 'describe'> | undefined;

  /** `provider`: where volumes the catalog does not hold are looked up (and then adopted); none: catalog only. */
  constructor(volumes: VolumeStore, jobs: JobStore, provider?: Pick<VolumeProvider, 'describe'>) {
    this.volumes = volumes;
    this.jobs = jobs;
    this.provider = provider;
  }

  /** The catalog's record of the volume: adopted from the provider when it describes one the catalog lacks, refreshed when external. */
  private async record(projectId: string, volumeId: string): Promise<VolumeRecord | undefined> {
    const volume = await this.volumes.get(projectId, volumeId);
    if (volume && !volume.external) return volume;
    if (!this.provider) return volume;
    let info: VolumeInfo;
    try {
      info = await this.provider.describe(projectId, volumeId);
    } catch (err) {
      // Unknown to the provider, or another project's (the two look the same): not found. A volume recorded
      // before and gone since keeps its record only while a job holds it.
      if ((err as Error).name === 'VolumeNotFoundError') return volume?.lockJobId ? volume : undefined;
      throw err;
    }
    return this.volumes.adopt(projectId, info);
  }

  /** The volume, with a lock whose job has ended released first. */
  async current(projectId: string, volumeId: string): Promise<VolumeRecord> {
    const volume = await this.record(projectId, volumeId);
    if (!volume) throw volumeNotFound(volumeId);
    if (!volume.lockJobId) return volume;
    const holder = await this.jobs.get(projectId, volume.lockJobId);
    const ended = holder ? holder.status === 'SUCCESS' || holder.status === 'FAIL' : Date.now() - Date.parse(volume.updatedAt) > STALE_LOCK_MS;
    if (!ended) return volume;
    await this.volumes.release(projectId, volumeId, volume.lockJobId);
    return (await this.record(projectId, volumeId)) ?? volume;
  }

  async lock(projectId: string, volumeId: string, jobId: string, busy: VolumeStatus, from: VolumeStatus[]): Promise<VolumeRecord> {
    try {
      return await this.volumes.lock(projectId, volumeId, jobId, busy, from);
    } catch (err) {
      if (err instanceof VolumeLockedError) throw conflict('VolumeBackup.0012', `${err.message}; try again when its job has finished`);
      throw err;
    }
  }

  /** Locks every (volume, job) pair or none: a refusal releases the ones taken before it. */
  async lockAll(projectId: string, pairs: Array<{ volumeId: string; jobId: string }>, busy: VolumeStatus, from: VolumeStatus[]): Promise<void> {
    const taken: Array<{ volumeId: string; jobId: string }> = [];
    try {
      for (const pair of pairs) {
        await this.current(projectId, pair.volumeId);
        await this.lock(projectId, pair.volumeId, pair.jobId, busy, from);
        taken.push(pair);
      }
    } catch (err) {
      await this.releaseAll(projectId, taken);
      throw err;
    }
  }

  async releaseAll(projectId: string, pairs: Array<{ volumeId: string; jobId: string }>): Promise<void> {
    await Promise.allSettled(pairs.map((p) => this.volumes.release(projectId, p.volumeId, p.jobId)));
  }
}

// Backups and restores: what may be backed up, restored or deleted, and when. Each of these becomes a job
// plus a workflow execution (./job-launcher.ts); the workflow's steps do the work and end the job.
//
// Locking: a volume carries at most one job (VolumeStore.lock is a conditional write), so two requests
// racing for the same volume cannot both win; a backup's status changes are conditional as well.
import { BackupStateError } from '../catalog/backups.ts';
import type { BackupStore } from '../catalog/backups.ts';
import { jobProgress } from '../catalog/jobs.ts';
import type { JobStore } from '../catalog/jobs.ts';
import type { VolumeStore } from '../catalog/volumes.ts';
import type { BackupRecord, BackupStatus } from '../engine/ports.ts';
import type { BackupDeleteInput, VolumeBackupInput, VolumeRestoreInput } from '../workflows/contracts.ts';
import type { WorkflowStarter } from '../workflows/registry.ts';
import { compareBackups, distinctTags, isServerBackup, validateBackupDescription, validateBackupName, validateTags } from './backup-rules.ts';
import type { BackupSortKey, BackupTag } from './backup-rules.ts';
import { backupNotFound, badRequest, conflict, volumeNotFound } from './errors.ts';
import { checkProjectId, isId, newBackupId, newJobId } from './ids.ts';
import { JobLauncher } from './job-launcher.ts';
import { pageLimit, pageOf } from './paging.ts';
import { VolumeLocks } from './volume-locks.ts';
import type { PageRequest } from './paging.ts';
import { gigabytes } from './sizes.ts';

export interface QuotaSettings {
  /** Backups per project; -1 = unlimited. */
  backups: number;
  /** Sum of backup sizes (GB, each rounded up) per project; -1 = unlimited. */
  backupGigabytes: number;
}

export interface BackupServiceDeps {
  backups: BackupStore;
  jobs: JobStore;
  volumes: VolumeStore;
  workflows: WorkflowStarter;
  quotas?: Partial<QuotaSettings>;
  /** What backups report as `availability_zone`. */
  availabilityZone?: string;
}

export interface CreateBackupRequest {
  volumeId: string;
  /** Absent (the native API allows it): `backup-` and the first 8 hex digits of the backup id. */
  name?: string;
  description?: string;
  /** Accepted for VBS compatibility; the volume provider reads the volume itself. */
  snapshotId?: string;
  tags?: BackupTag[];
  forceFull?: boolean;
}

export interface ListBackupsQuery extends PageRequest {
  name?: string;
  status?: string;
  volumeId?: string;
  sortKey?: BackupSortKey;
  sortDir?: 'asc' | 'desc';
}

/** A backup with the progress of the job creating it (100 once available). */
export interface BackupDetail {
  record: BackupRecord;
  progress: number;
}

export interface BackupPage {
  backups: BackupDetail[];
  /** Set when more backups follow: the marker of the next page. */
  nextMarker?: string;
  limit: number;
}

export interface RestoreStarted {
  jobId: string;
  backupId: string;
  volumeId: string;
  volumeName: string;
}

export interface BackupStarted {
  jobId: string;
  backupId: string;
  name: string;
}

export interface QuotaUsage {
  type: 'backups' | 'backup_gigabytes';
  used: number;
  reserved: number;
  quota: number;
}

export class BackupService {
  private readonly backups: BackupStore;
  private readonly jobs: JobStore;
  private readonly volumes: VolumeStore;
  private readonly launcher: JobLauncher;
  private readonly locks: VolumeLocks;
  private readonly quotas: QuotaSettings;
  readonly availabilityZone: string;

  constructor(deps: BackupServiceDeps) {
    this.backups = deps.backups;
    this.jobs = deps.jobs;
    this.volumes = deps.volumes;
    this.launcher = new JobLauncher(deps.jobs, deps.workflows);
    this.locks = new VolumeLocks(deps.volumes, deps.jobs);
    this.quotas = { backups: deps.quotas?.backups ?? -1, backupGigabytes: deps.quotas?.backupGigabytes ?? -1 };
    this.availabilityZone = deps.availabilityZone ?? 'local';
  }

  async create(projectId: string, req: CreateBackupRequest): Promise<BackupStarted> {
    checkProjectId(projectId);
    const backupId = newBackupId();
    const name = req.name ?? `backup-${backupId.slice(0, 8)}`;
    validateBackupName(name);
    validateBackupDescription(req.description);
    validateTags(req.tags);
    if (!isId(req.volumeId)) throw volumeNotFound(req.volumeId);
    const volume = await this.locks.current(projectId, req.volumeId);
    if (volume.status !== 'available' && volume.status !== 'in-use') {
      throw conflict('VolumeBackup.0012', `volume ${req.volumeId} is ${volume.status}; a backup needs it available or in-use`);
    }
    await this.checkQuota(projectId, volume.sizeBytes);

    const jobId = newJobId();
    const tags = req.tags ? distinctTags(req.tags) : [];
    await this.locks.lock(projectId, req.volumeId, jobId, 'backing-up', ['available', 'in-use']);
    const input: VolumeBackupInput = {
      projectId,
      jobId,
      backupId,
      volumeId: req.volumeId,
      name,
      ...(req.description !== undefined ? { description: req.description } : {}),
      ...(req.forceFull ? { forceFull: true } : {}),
      ...(tags.length ? { tags } : {}),
    };
    await this.launcher.launch({
      projectId,
      jobId,
      jobType: 'bksCreateBackup',
      entities: { backup_id: backupId, volume_id: req.volumeId },
      workflow: 'volume-backup',
      input,
      undo: () => this.volumes.release(projectId, req.volumeId, jobId),
    });
    return { jobId, backupId, name };
  }

  async restore(projectId: string, backupId: string, volumeId: string): Promise<RestoreStarted> {
    checkProjectId(projectId);
    if (!isId(backupId)) throw backupNotFound(backupId);
    const backup = await this.backups.getBackup(projectId, backupId);
    if (!backup) throw backupNotFound(backupId);
    if (backup.status !== 'available') throw conflict('VolumeBackup.0089', `backup ${backupId} is ${backup.status}; only an available backup can be restored`);
    if (!isId(volumeId)) throw volumeNotFound(volumeId);
    const volume = await this.locks.current(projectId, volumeId);
    if (volume.status === 'error') throw conflict('VolumeBackup.0205', `volume ${volumeId} is in error`);
    if (volume.sizeBytes < backup.sizeBytes) {
      throw badRequest('VolumeBackup.0209', `volume ${volumeId} has ${volume.sizeBytes} bytes, the backup needs ${backup.sizeBytes}`);
    }
    if (volume.status === 'in-use') throw conflict('VolumeBackup.0012', `volume ${volumeId} is in-use; stop the server and detach the volume first`);
    if (volume.status !== 'available') throw conflict('VolumeBackup.0012', `volume ${volumeId} is ${volume.status}; try again when its job has finished`);

    const jobId = newJobId();
    await this.locks.lock(projectId, volumeId, jobId, 'restoring', ['available']);
    const release = () => this.volumes.release(projectId, volumeId, jobId);
    try {
      await this.backups.updateBackup(projectId, backupId, { status: 'restoring' }, ['available']);
    } catch (err) {
      await release();
      if (err instanceof BackupStateError) throw conflict('VolumeBackup.0089', `backup ${backupId} is no longer available`);
      throw err;
    }
    const input: VolumeRestoreInput = { projectId, jobId, backupId, volumeId };
    await this.launcher.launch({
      projectId,
      jobId,
      jobType: 'bksRestoreBackup',
      entities: { backup_id: backupId, volume_id: volumeId },
      workflow: 'volume-restore',
      input,
      undo: () => Promise.allSettled([this.backups.updateBackup(projectId, backupId, { status: 'available' }, ['restoring']), release()]),
    });
    return { jobId, backupId, volumeId, volumeName: volume.name };
  }

  async delete(projectId: string, backupId: string): Promise<{ jobId: string }> {
    checkProjectId(projectId);
    if (!isId(backupId)) throw backupNotFound(backupId);
    const backup = await this.backups.getBackup(projectId, backupId);
    if (!backup) throw backupNotFound(backupId);
    if (isServerBackup(backup)) throw conflict('OpenVBS.1002', `backup ${backupId} belongs to a server backup; delete it through the server backup`);
    const from: BackupStatus[] = ['available', 'error'];
    if (!from.includes(backup.status)) throw conflict('OpenVBS.1001', `backup ${backupId} is ${backup.status}; only available or error backups can be deleted`);
    try {
      await this.backups.updateBackup(projectId, backupId, { status: 'deleting' }, from);
    } catch (err) {
      if (err instanceof BackupStateError) throw conflict('OpenVBS.1001', `backup ${backupId} changed status; only available or error backups can be deleted`);
      throw err;
    }
    const jobId = newJobId();
    const input: BackupDeleteInput = { projectId, jobId, backupId };
    await this.launcher.launch({
      projectId,
      jobId,
      jobType: 'bksDeleteBackup',
      entities: { backup_id: backupId, volume_id: backup.volumeId },
      workflow: 'backup-delete',
      input,
      undo: () => this.backups.updateBackup(projectId, backupId, { status: backup.status }, ['deleting']),
    });
    return { jobId };
  }

  async get(projectId: string, backupId: string): Promise<BackupDetail> {
    if (!isId(projectId) || !isId(backupId)) throw backupNotFound(backupId);
    const record = await this.backups.getBackup(projectId, backupId);
    if (!record) throw backupNotFound(backupId);
    const [detail] = await this.withProgress(projectId, [record]);
    return detail!;
  }

  async list(projectId: string, query: ListBackupsQuery = {}): Promise<BackupPage> {
    checkProjectId(projectId);
    if (query.volumeId !== undefined && !isId(query.volumeId)) return { backups: [], limit: pageLimit(query.limit) };
    let items = await this.backups.listBackups(projectId, query.volumeId ? { volumeId: query.volumeId } : {});
    if (query.name !== undefined) items = items.filter((b) => b.name === query.name);
    if (query.status !== undefined) items = items.filter((b) => b.status === query.status);
    const cmp = compareBackups(query.sortKey ?? 'created_at');
    items.sort(query.sortDir === 'asc' ? cmp : (a, b) => cmp(b, a));
    const page = pageOf(items, query, (b) => b.backupId);
    return { backups: await this.withProgress(projectId, page.items), limit: page.limit, ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}) };
  }

  async quota(projectId: string): Promise<QuotaUsage[]> {
    checkProjectId(projectId);
    const usage = await this.usage(projectId);
    return [
      { type: 'backups', used: usage.count, reserved: 0, quota: this.quotas.backups },
      { type: 'backup_gigabytes', used: usage.gigabytes, reserved: 0, quota: this.quotas.backupGigabytes },
    ];
  }

  /**
   * The volume, with a lock that outlived its job let go first: the lock names its job, and a job that has ended
   * (or was never written, STALE_LOCK_MS after the lock) no longer holds anything. A job that ended without its
   * workflow's failure path (a lost failure-path invocation) so cannot keep its volume locked forever.
   */
  private async checkQuota(projectId: string, addBytes: number): Promise<void> {
    if (this.quotas.backups < 0 && this.quotas.backupGigabytes < 0) return;
    const usage = await this.usage(projectId);
    if (this.quotas.backups >= 0 && usage.count + 1 > this.quotas.backups) {
      throw badRequest('OpenVBS.1003', `backup quota exceeded: ${usage.count} of ${this.quotas.backups} backups used`);
    }
    if (this.quotas.backupGigabytes >= 0 && usage.gigabytes + gigabytes(addBytes) > this.quotas.backupGigabytes) {
      throw badRequest('OpenVBS.1003', `backup capacity quota exceeded: ${usage.gigabytes} of ${this.quotas.backupGigabytes} GB used, the volume needs ${gigabytes(addBytes)} GB`);
    }
  }

  private async usage(projectId: string): Promise<{ count: number; gigabytes: number }> {
    const all = await this.backups.listBackups(projectId, {});
    return { count: all.length, gigabytes: all.reduce((sum, b) => sum + gigabytes(b.sizeBytes), 0) };
  }

  private async withProgress(projectId: string, records: BackupRecord[]): Promise<BackupDetail[]> {
    return Promise.all(
      records.map(async (record) => {
        if (record.status !== 'creating') return { record, progress: record.status === 'error' ? 0 : 100 };
        const jobId = typeof record.extra?.jobId === 'string' ? record.extra.jobId : undefined;
        const job = jobId ? await this.jobs.get(projectId, jobId) : undefined;
        return { record, progress: job ? jobProgress(job) : 0 };
      }),
    );
  }
}

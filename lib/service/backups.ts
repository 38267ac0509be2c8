// Backups and restores: what may be backed up, restored or deleted, and when. Each of these becomes a job
// plus a workflow execution (./job-launcher.ts); the workflow's steps do the work and end the job.
//
// Locking: a volume carries at most one job (VolumeStore.lock is a conditional write), so two requests
// racing for the same volume cannot both win; a backup's status changes are conditional as well.
import { BackupStateError } from '../catalog/backups.ts';
import type { BackupStore } from '../catalog/backups.ts';
import { jobProgress } from '../catalog/jobs.ts';
import type { JobStore } from '../catalog/jobs.ts';
import { BACKUP_PROJECT_ENTITY } from '../catalog/shares.ts';
import type { ShareStore } from '../catalog/shares.ts';
import type { VolumeStore } from '../catalog/volumes.ts';
import type { BackupRecord, BackupStatus, VolumeProvider } from '../engine/ports.ts';
import type { BackupDeleteInput, VolumeBackupInput, VolumeRestoreInput } from '../workflows/contracts.ts';
import type { WorkflowStarter } from '../workflows/registry.ts';
import { compareBackups, distinctTags, isServerBackup, validateBackupDescription, validateBackupName, validateTags } from './backup-rules.ts';
import type { BackupSortKey, BackupTag } from './backup-rules.ts';
import { ServiceError, backupNotFound, badRequest, conflict, volumeNotFound } from './errors.ts';
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
  /** Where volumes the catalog does not hold are found (EBS: adopted on first use; see volume-locks.ts). */
  provider?: Pick<VolumeProvider, 'describe'>;
  quotas?: Partial<QuotaSettings>;
  /** What backups report as `availability_zone`. */
  availabilityZone?: string;
  /** Backups other projects share (./sharing.ts): listed and shown to the receiver, who may create volumes from them. */
  shares?: ShareStore;
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
  /** Tags every listed backup has: a value, or undefined for any value of the key. */
  tags?: Array<{ key: string; value?: string }>;
}

/** A backup with the progress of the job creating it (100 once available). */
export interface BackupDetail {
  record: BackupRecord;
  progress: number;
  /** Set when the backup is another project's (`record.projectId`) shared with this project: this project. */
  sharedTo?: string;
}

/** A project a backup is shared with may only create new volumes from it. */
export const sharedNotOwned = (backupId: string, ownerProjectId: string, what: string) =>
  new ServiceError(403, 'OpenVBS.1903', `backup ${backupId} is shared with this project by project ${ownerProjectId}; only its owner can ${what} (a new volume can be created from it)`);

/** The tags a backup was created with (policy backups: the policy's). */
export function backupTags(record: BackupRecord): BackupTag[] {
  const tags = record.extra?.tags;
  return Array.isArray(tags) ? (tags as BackupTag[]).filter((t) => typeof t?.key === 'string' && typeof t.value === 'string') : [];
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
  private readonly shares: ShareStore | undefined;
  readonly availabilityZone: string;

  constructor(deps: BackupServiceDeps) {
    this.backups = deps.backups;
    this.jobs = deps.jobs;
    this.volumes = deps.volumes;
    this.launcher = new JobLauncher(deps.jobs, deps.workflows);
    this.locks = new VolumeLocks(deps.volumes, deps.jobs, deps.provider);
    this.quotas = { backups: deps.quotas?.backups ?? -1, backupGigabytes: deps.quotas?.backupGigabytes ?? -1 };
    this.availabilityZone = deps.availabilityZone ?? 'local';
    this.shares = deps.shares;
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

  /** Restores the project's own backup onto one of its volumes (a backup shared with it: OpenVBS.1903). */
  async restore(projectId: string, backupId: string, volumeId: string): Promise<RestoreStarted> {
    checkProjectId(projectId);
    const { record, sharedTo } = await this.visible(projectId, backupId);
    if (sharedTo) throw sharedNotOwned(backupId, record.projectId, 'restore it onto an existing volume');
    return this.startRestore(projectId, record, volumeId);
  }

  /**
   * Restores a backup of the project, or one shared with it, into a volume just created for it (the volume
   * inventory's create with a backup_id). The job runs as the project's; a shared backup's record, status and
   * key domain stay the owner's (the job's `backup_project_id` entity tells the workflow where to read).
   */
  async restoreToNewVolume(projectId: string, backupId: string, volumeId: string): Promise<RestoreStarted> {
    checkProjectId(projectId);
    const { record } = await this.visible(projectId, backupId);
    return this.startRestore(projectId, record, volumeId);
  }

  /** A backup of the project, or one another project shares with it (then `sharedTo` is set). */
  async visible(projectId: string, backupId: string): Promise<{ record: BackupRecord; sharedTo?: string }> {
    if (!isId(projectId) || !isId(backupId)) throw backupNotFound(backupId);
    const own = await this.backups.getBackup(projectId, backupId);
    if (own) return { record: own };
    const share = await this.shares?.getReceived(projectId, backupId);
    const shared = share ? await this.backups.getBackup(share.fromProjectId, backupId) : undefined;
    if (!shared) throw backupNotFound(backupId);
    return { record: shared, sharedTo: projectId };
  }

  private async startRestore(projectId: string, backup: BackupRecord, volumeId: string): Promise<RestoreStarted> {
    const { backupId } = backup;
    // The backup's catalog entry is its owner's: for a shared backup, not the project the restore writes to.
    const owner = backup.projectId;
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
      await this.backups.updateBackup(owner, backupId, { status: 'restoring' }, ['available']);
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
      entities: { backup_id: backupId, volume_id: volumeId, ...(owner !== projectId ? { [BACKUP_PROJECT_ENTITY]: owner } : {}) },
      workflow: 'volume-restore',
      input,
      undo: () => Promise.allSettled([this.backups.updateBackup(owner, backupId, { status: 'available' }, ['restoring']), release()]),
    });
    return { jobId, backupId, volumeId, volumeName: volume.name };
  }

  async delete(projectId: string, backupId: string): Promise<{ jobId: string }> {
    checkProjectId(projectId);
    const { record: backup, sharedTo } = await this.visible(projectId, backupId);
    if (sharedTo) throw sharedNotOwned(backupId, backup.projectId, 'delete it');
    const stillShared = () => conflict('OpenVBS.1904', `backup ${backupId} is shared with other projects; remove its shares first (DELETE os-vendor-backup-sharing/${backupId}?is_backup_id=true)`);
    if (await this.isShared(projectId, backupId)) throw stillShared();
    if (isServerBackup(backup)) throw conflict('OpenVBS.1002', `backup ${backupId} belongs to a server backup; delete it through the server backup`);
    const from: BackupStatus[] = ['available', 'error'];
    if (!from.includes(backup.status)) throw conflict('OpenVBS.1001', `backup ${backupId} is ${backup.status}; only available or error backups can be deleted`);
    try {
      await this.backups.updateBackup(projectId, backupId, { status: 'deleting' }, from);
    } catch (err) {
      if (err instanceof BackupStateError) throw conflict('OpenVBS.1001', `backup ${backupId} changed status; only available or error backups can be deleted`);
      throw err;
    }
    // A share made between the check above and `deleting` would outlive the backup: look again now that no new
    // share can be made (sharing re-reads the status after writing its shares), and give the backup back if one was.
    if (await this.isShared(projectId, backupId)) {
      await this.backups.updateBackup(projectId, backupId, { status: backup.status }, ['deleting']);
      throw stillShared();
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
    const { record, sharedTo } = await this.visible(projectId, backupId);
    const [detail] = await this.withProgress(projectId, [record]);
    return { ...detail!, ...(sharedTo ? { sharedTo } : {}) };
  }

  async list(projectId: string, query: ListBackupsQuery = {}): Promise<BackupPage> {
    checkProjectId(projectId);
    if (query.volumeId !== undefined && !isId(query.volumeId)) return { backups: [], limit: pageLimit(query.limit) };
    const own = await this.backups.listBackups(projectId, query.volumeId ? { volumeId: query.volumeId } : {});
    // Backups other projects share with this one are listed with its own (shown as shared, with their owner).
    let items = [...own, ...(await this.sharedWith(projectId))];
    if (query.volumeId !== undefined) items = items.filter((b) => b.volumeId === query.volumeId);
    if (query.name !== undefined) items = items.filter((b) => b.name === query.name);
    if (query.status !== undefined) items = items.filter((b) => b.status === query.status);
    if (query.tags?.length) {
      const wanted = query.tags;
      items = items.filter((b) => {
        const tags = backupTags(b);
        return wanted.every((w) => tags.some((t) => t.key === w.key && (w.value === undefined || t.value === w.value)));
      });
    }
    const cmp = compareBackups(query.sortKey ?? 'created_at');
    items.sort(query.sortDir === 'asc' ? cmp : (a, b) => cmp(b, a));
    const page = pageOf(items, query, (b) => b.backupId);
    const details = (await this.withProgress(projectId, page.items)).map((d) => (d.record.projectId !== projectId ? { ...d, sharedTo: projectId } : d));
    return { backups: details, limit: page.limit, ...(page.nextMarker ? { nextMarker: page.nextMarker } : {}) };
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

  /** Whether the project's backup is shared with another project. */
  private async isShared(projectId: string, backupId: string): Promise<boolean> {
    return Boolean((await this.shares?.listShared(projectId, backupId))?.length);
  }

  /** The backups other projects share with this one (a share whose backup is gone is skipped). */
  private async sharedWith(projectId: string): Promise<BackupRecord[]> {
    const received = (await this.shares?.listReceived(projectId)) ?? [];
    const records = await Promise.all(received.map((s) => this.backups.getBackup(s.fromProjectId, s.backupId)));
    return records.filter((r) => r !== undefined);
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

// The VBS business rules: what may be backed up, restored or deleted, and when. Long operations become a
// job (INIT) plus a workflow execution; the workflow's steps (lib/workflows/tasks.ts) do the work and
// finish the job. The API layer only parses requests and renders what this returns.
//
// Locking: a volume carries at most one job (VolumeStore.lock is a conditional write), so two requests
// racing for the same volume cannot both win; a backup's status changes are conditional as well.
import { randomBytes, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { BackupStateError } from '../catalog/dynamo-catalog.ts';
import type { DynamoBackupCatalog } from '../catalog/dynamo-catalog.ts';
import { jobProgress } from '../catalog/jobs.ts';
import type { JobRecord, JobStore, JobType } from '../catalog/jobs.ts';
import type { TokenRecord, TokenStore } from '../catalog/tokens.ts';
import { VolumeLockedError } from '../catalog/volumes.ts';
import type { VolumeRecord, VolumeStatus, VolumeStore } from '../catalog/volumes.ts';
import { newBackupId } from '../engine/backup.ts';
import type { BackupRecord, BackupStatus } from '../engine/ports.ts';
import type { BackupDeleteInput, VolumeBackupInput, VolumeRestoreInput, WorkflowName, WorkflowStarter } from '../workflows/contracts.ts';
import { ServiceError, backupNotFound, badRequest, invalidParam, notFound } from './errors.ts';

export const GIB = 1024 ** 3;
export const gigabytes = (bytes: number) => Math.ceil(bytes / GIB);

/** Project and resource ids: they appear in paths, keys and file names. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export interface QuotaSettings {
  /** Backups per project; -1 = unlimited. */
  backups: number;
  /** Sum of backup sizes (GB, each rounded up) per project; -1 = unlimited. */
  backupGigabytes: number;
}

export interface VbsServiceDeps {
  catalog: DynamoBackupCatalog;
  jobs: JobStore;
  volumes: VolumeStore;
  tokens: TokenStore;
  workflows: WorkflowStarter;
  /** Managed volume images go to `<dataDir>/volumes/<project>/<volumeId>.img`. */
  dataDir: string;
  quotas?: Partial<QuotaSettings>;
  /** Whether POST /volumes may register an existing path (local mode: yes; a shared deployment: no). */
  allowPathRegistration?: boolean;
  /** What backups report as `availability_zone`. */
  availabilityZone?: string;
}

export interface BackupTag {
  key: string;
  value: string;
}

export interface CreateBackupRequest {
  volumeId: string;
  name: string;
  description?: string;
  /** Accepted for VBS compatibility; the file provider reads the volume itself. */
  snapshotId?: string;
  tags?: BackupTag[];
  forceFull?: boolean;
}

export const BACKUP_SORT_KEYS = ['created_at', 'updated_at', 'name', 'size', 'status', 'id'] as const;
export type BackupSortKey = (typeof BACKUP_SORT_KEYS)[number];

export interface ListBackupsQuery {
  name?: string;
  status?: string;
  volumeId?: string;
  offset?: number;
  limit?: number;
  /** Id of the last backup of the previous page. */
  marker?: string;
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

export interface QuotaUsage {
  type: 'backups' | 'backup_gigabytes';
  used: number;
  reserved: number;
  quota: number;
}

export interface CreateVolumeRequest {
  name: string;
  sizeBytes: number;
  kmsKeyId?: string;
}

export interface RegisterVolumeRequest {
  name: string;
  path: string;
  kmsKeyId?: string;
  /** Needed for a block device whose size cannot be read from sysfs. */
  sizeBytes?: number;
}

export const MAX_PAGE = 1000;
const NAME_MAX = 64;
const DESCRIPTION_MAX = 255;
const TAGS_MAX = 10;
const VOLUME_NAME_MAX = 255;

const now = () => new Date().toISOString();
const newJobId = () => randomBytes(16).toString('hex');

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkId(kind: string, id: string) {
  if (!ID_PATTERN.test(id)) throw invalidParam(`invalid ${kind} id`);
}

function validateBackupName(name: string) {
  const chars = [...name];
  if (chars.length === 0) throw badRequest('VolumeBackup.0004', 'backup name must not be empty');
  if (chars.length > NAME_MAX) throw badRequest('VolumeBackup.0003', `backup name is longer than ${NAME_MAX} characters`);
  if (!/^[\p{L}\p{N}_-]+$/u.test(name)) throw badRequest('VolumeBackup.0004', 'backup name may contain only letters, digits, underscores and hyphens');
  if (name.toLowerCase().startsWith('auto')) throw badRequest('VolumeBackup.0005', 'backup name must not start with "auto" (reserved for policy backups)');
}

function validateDescription(description: string | undefined) {
  if (description === undefined) return;
  if ([...description].length > DESCRIPTION_MAX || /[<>]/.test(description)) {
    throw badRequest('VolumeBackup.0006', `backup description must be at most ${DESCRIPTION_MAX} characters without "<" or ">"`);
  }
}

function validateTags(tags: BackupTag[] | undefined) {
  if (!tags) return;
  if (tags.length > TAGS_MAX) throw badRequest('OpenVBS.1004', `at most ${TAGS_MAX} tags per backup`);
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.key.length < 1 || t.key.length > 36) throw badRequest('OpenVBS.1004', 'tag key must be 1-36 characters');
    if (t.value.length > 43) throw badRequest('OpenVBS.1004', 'tag value must be at most 43 characters');
    if (seen.has(t.key)) throw badRequest('OpenVBS.1004', `duplicate tag key ${t.key}`);
    seen.add(t.key);
  }
}

/** True for a backup taken as part of a server (CSBS) backup: only CSBS may delete it. */
export function isServerBackup(record: BackupRecord): boolean {
  const st = record.extra?.ST;
  return st === 1 || st === '1' || Boolean(record.extra?.serverBackupId);
}

function compareBackups(key: BackupSortKey): (a: BackupRecord, b: BackupRecord) => number {
  const value = (r: BackupRecord): string | number => {
    switch (key) {
      case 'name':
        return r.name ?? '';
      case 'size':
        return r.sizeBytes;
      case 'status':
        return r.status;
      case 'id':
        return r.backupId;
      case 'updated_at':
        return r.updatedAt;
      default:
        return r.createdAt;
    }
  };
  return (a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va < vb) return -1;
    if (va > vb) return 1;
    return a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0;
  };
}

/** Size of a block device from sysfs (Linux), or undefined. */
async function blockDeviceSize(path: string): Promise<number | undefined> {
  try {
    const dev = basename(await realpath(path));
    const sectors = Number((await readFile(`/sys/class/block/${dev}/size`, 'utf8')).trim());
    return Number.isSafeInteger(sectors) && sectors > 0 ? sectors * 512 : undefined;
  } catch {
    return undefined;
  }
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

export class VbsService {
  private readonly catalog: DynamoBackupCatalog;
  private readonly jobs: JobStore;
  private readonly volumes: VolumeStore;
  private readonly tokens: TokenStore;
  private readonly workflows: WorkflowStarter;
  private readonly dataDir: string;
  private readonly quotas: QuotaSettings;
  private readonly allowPathRegistration: boolean;
  readonly availabilityZone: string;

  constructor(deps: VbsServiceDeps) {
    this.catalog = deps.catalog;
    this.jobs = deps.jobs;
    this.volumes = deps.volumes;
    this.tokens = deps.tokens;
    this.workflows = deps.workflows;
    this.dataDir = deps.dataDir;
    this.quotas = { backups: deps.quotas?.backups ?? -1, backupGigabytes: deps.quotas?.backupGigabytes ?? -1 };
    this.allowPathRegistration = deps.allowPathRegistration ?? true;
    this.availabilityZone = deps.availabilityZone ?? 'local';
  }

  // ---- jobs and workflows ----

  private async newJob(projectId: string, jobId: string, jobType: JobType, entities: Record<string, string>): Promise<void> {
    await this.jobs.create({ projectId, jobId, jobType, status: 'INIT', entities, bytesDone: 0, bytesTotal: 0, createdAt: now() });
  }

  /**
   * Starts the workflow for a job. On failure `undo` puts things back, the job ends FAIL and the caller
   * gets VolumeBackup.0014.
   */
  private async startWorkflow(projectId: string, jobId: string, workflow: WorkflowName, input: unknown, undo: () => Promise<void>): Promise<void> {
    let executionArn: string;
    try {
      ({ executionArn } = await this.workflows.start(workflow, jobId, input));
    } catch (err) {
      const reason = `could not start the ${workflow} workflow: ${errorMessage(err)}`;
      await Promise.allSettled([undo(), this.jobs.update(projectId, jobId, { status: 'FAIL', endTime: now(), errorCode: 'VolumeBackup.0014', failReason: reason })]);
      throw new ServiceError(500, 'VolumeBackup.0014', 'the job could not be submitted; try again');
    }
    await this.jobs.update(projectId, jobId, { executionArn });
  }

  async getJob(projectId: string, jobId: string): Promise<JobRecord> {
    if (!ID_PATTERN.test(jobId)) throw new ServiceError(404, 'common.0011', `job ${jobId} not found`);
    const job = await this.jobs.get(projectId, jobId);
    if (!job) throw new ServiceError(404, 'common.0011', `job ${jobId} not found`);
    return job;
  }

  // ---- backups ----

  async createBackup(projectId: string, req: CreateBackupRequest): Promise<{ jobId: string; backupId: string }> {
    checkId('project', projectId);
    validateBackupName(req.name);
    validateDescription(req.description);
    validateTags(req.tags);
    if (!ID_PATTERN.test(req.volumeId)) throw badRequest('VolumeBackup.0012', `volume ${req.volumeId} not found`);
    const volume = await this.volumes.get(projectId, req.volumeId);
    if (!volume) throw badRequest('VolumeBackup.0012', `volume ${req.volumeId} not found`);
    if (volume.status !== 'available' && volume.status !== 'in-use') {
      throw badRequest('VolumeBackup.0012', `volume ${req.volumeId} is ${volume.status}; a backup needs it available or in-use`);
    }
    await this.checkQuota(projectId, volume.sizeBytes);

    const jobId = newJobId();
    const backupId = newBackupId();
    await this.lockVolume(projectId, req.volumeId, jobId, 'backing-up', ['available', 'in-use']);
    try {
      await this.newJob(projectId, jobId, 'bksCreateBackup', { backup_id: backupId, volume_id: req.volumeId });
    } catch (err) {
      await this.volumes.release(projectId, req.volumeId, jobId);
      throw err;
    }
    const input: VolumeBackupInput = {
      projectId,
      jobId,
      backupId,
      volumeId: req.volumeId,
      name: req.name,
      ...(req.description !== undefined ? { description: req.description } : {}),
      ...(req.forceFull ? { forceFull: true } : {}),
      ...(req.tags?.length ? { tags: req.tags } : {}),
    };
    await this.startWorkflow(projectId, jobId, 'volume-backup', input, () => this.volumes.release(projectId, req.volumeId, jobId));
    return { jobId, backupId };
  }

  private async lockVolume(projectId: string, volumeId: string, jobId: string, busy: VolumeStatus, from: VolumeStatus[]): Promise<VolumeRecord> {
    try {
      return await this.volumes.lock(projectId, volumeId, jobId, busy, from);
    } catch (err) {
      if (err instanceof VolumeLockedError) throw badRequest('VolumeBackup.0012', `${err.message}; try again when its job has finished`);
      throw err;
    }
  }

  private async checkQuota(projectId: string, addBytes: number) {
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
    const all = await this.catalog.listBackups(projectId);
    return { count: all.length, gigabytes: all.reduce((sum, b) => sum + gigabytes(b.sizeBytes), 0) };
  }

  async restoreBackup(projectId: string, backupId: string, volumeId: string): Promise<{ jobId: string; backupId: string; volumeId: string; volumeName: string }> {
    checkId('project', projectId);
    if (!ID_PATTERN.test(backupId)) throw notFound(`backup ${backupId} not found`);
    const backup = await this.catalog.getBackup(projectId, backupId);
    if (!backup) throw notFound(`backup ${backupId} not found`);
    if (backup.status !== 'available') throw badRequest('VolumeBackup.0089', `backup ${backupId} is ${backup.status}; only an available backup can be restored`);
    if (!ID_PATTERN.test(volumeId)) throw badRequest('VolumeBackup.0202', `volume ${volumeId} not found`);
    const volume = await this.volumes.get(projectId, volumeId);
    if (!volume) throw badRequest('VolumeBackup.0202', `volume ${volumeId} not found`);
    if (volume.status === 'error') throw badRequest('VolumeBackup.0205', `volume ${volumeId} is in error`);
    if (volume.sizeBytes < backup.sizeBytes) {
      throw badRequest('VolumeBackup.0209', `volume ${volumeId} has ${volume.sizeBytes} bytes, the backup needs ${backup.sizeBytes}`);
    }
    if (volume.status === 'in-use') throw badRequest('VolumeBackup.0012', `volume ${volumeId} is in-use; stop the server and detach the volume first`);
    if (volume.status !== 'available') throw badRequest('VolumeBackup.0012', `volume ${volumeId} is ${volume.status}; try again when its job has finished`);

    const jobId = newJobId();
    await this.lockVolume(projectId, volumeId, jobId, 'restoring', ['available']);
    const release = () => this.volumes.release(projectId, volumeId, jobId);
    try {
      await this.catalog.updateBackup(projectId, backupId, { status: 'restoring' }, ['available']);
    } catch (err) {
      await release();
      if (err instanceof BackupStateError) throw badRequest('VolumeBackup.0089', `backup ${backupId} is no longer available`);
      throw err;
    }
    const undo = async () => {
      await Promise.allSettled([this.catalog.updateBackup(projectId, backupId, { status: 'available' }, ['restoring']), release()]);
    };
    try {
      await this.newJob(projectId, jobId, 'bksRestoreBackup', { backup_id: backupId, volume_id: volumeId });
    } catch (err) {
      await undo();
      throw err;
    }
    const input: VolumeRestoreInput = { projectId, jobId, backupId, volumeId };
    await this.startWorkflow(projectId, jobId, 'volume-restore', input, undo);
    return { jobId, backupId, volumeId, volumeName: volume.name };
  }

  async deleteBackup(projectId: string, backupId: string): Promise<{ jobId: string }> {
    checkId('project', projectId);
    if (!ID_PATTERN.test(backupId)) throw notFound(`backup ${backupId} not found`);
    const backup = await this.catalog.getBackup(projectId, backupId);
    if (!backup) throw notFound(`backup ${backupId} not found`);
    if (isServerBackup(backup)) throw badRequest('OpenVBS.1002', `backup ${backupId} belongs to a server backup; delete it through the server backup`);
    const from: BackupStatus[] = ['available', 'error'];
    if (!from.includes(backup.status)) throw badRequest('OpenVBS.1001', `backup ${backupId} is ${backup.status}; only available or error backups can be deleted`);
    try {
      await this.catalog.updateBackup(projectId, backupId, { status: 'deleting' }, from);
    } catch (err) {
      if (err instanceof BackupStateError) throw badRequest('OpenVBS.1001', `backup ${backupId} changed status; only available or error backups can be deleted`);
      throw err;
    }
    const jobId = newJobId();
    const undo = async () => {
      await this.catalog.updateBackup(projectId, backupId, { status: backup.status }, ['deleting']).catch(() => undefined);
    };
    try {
      await this.newJob(projectId, jobId, 'bksDeleteBackup', { backup_id: backupId, volume_id: backup.volumeId });
    } catch (err) {
      await undo();
      throw err;
    }
    const input: BackupDeleteInput = { projectId, jobId, backupId };
    await this.startWorkflow(projectId, jobId, 'backup-delete', input, undo);
    return { jobId };
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

  async getBackup(projectId: string, backupId: string): Promise<BackupDetail> {
    if (!ID_PATTERN.test(projectId) || !ID_PATTERN.test(backupId)) throw backupNotFound(backupId);
    const record = await this.catalog.getBackup(projectId, backupId);
    if (!record) throw backupNotFound(backupId);
    const [detail] = await this.withProgress(projectId, [record]);
    return detail!;
  }

  async listBackups(projectId: string, query: ListBackupsQuery = {}): Promise<BackupPage> {
    checkId('project', projectId);
    const limit = Math.min(Math.max(query.limit ?? MAX_PAGE, 1), MAX_PAGE);
    const offset = Math.max(query.offset ?? 0, 0);
    if (query.volumeId !== undefined && !ID_PATTERN.test(query.volumeId)) return { backups: [], limit };
    let items = await this.catalog.listBackups(projectId, query.volumeId ? { volumeId: query.volumeId } : {});
    if (query.name !== undefined) items = items.filter((b) => b.name === query.name);
    if (query.status !== undefined) items = items.filter((b) => b.status === query.status);
    const cmp = compareBackups(query.sortKey ?? 'created_at');
    items.sort(query.sortDir === 'asc' ? cmp : (a, b) => cmp(b, a));
    let start = 0;
    if (query.marker !== undefined) {
      const at = items.findIndex((b) => b.backupId === query.marker);
      if (at < 0) throw invalidParam(`marker ${query.marker} not found`);
      start = at + 1;
    }
    start += offset;
    const page = items.slice(start, start + limit);
    const more = start + limit < items.length;
    return {
      backups: await this.withProgress(projectId, page),
      limit,
      ...(more && page.length ? { nextMarker: page[page.length - 1]!.backupId } : {}),
    };
  }

  async getQuota(projectId: string): Promise<QuotaUsage[]> {
    checkId('project', projectId);
    const usage = await this.usage(projectId);
    return [
      { type: 'backups', used: usage.count, reserved: 0, quota: this.quotas.backups },
      { type: 'backup_gigabytes', used: usage.gigabytes, reserved: 0, quota: this.quotas.backupGigabytes },
    ];
  }

  // ---- volumes (local-mode inventory) ----

  private validateVolumeName(name: string) {
    if (name.length < 1 || name.length > VOLUME_NAME_MAX) throw badRequest('OpenVBS.1101', `volume name must be 1-${VOLUME_NAME_MAX} characters`);
  }

  /** Creates a sparse raw image of `sizeBytes` in the data folder. */
  async createVolume(projectId: string, req: CreateVolumeRequest): Promise<VolumeRecord> {
    checkId('project', projectId);
    this.validateVolumeName(req.name);
    if (!Number.isSafeInteger(req.sizeBytes) || req.sizeBytes < 1) throw badRequest('OpenVBS.1101', 'volume size must be a positive number of bytes');
    const volumeId = randomUUID();
    const dir = join(this.dataDir, 'volumes', projectId);
    const path = join(dir, `${volumeId}.img`);
    await mkdir(dir, { recursive: true });
    const fh = await open(path, 'wx');
    try {
      await fh.truncate(req.sizeBytes);
    } catch (err) {
      await fh.close();
      await rm(path, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EFBIG' || code === 'ENOSPC' || code === 'EINVAL') throw badRequest('OpenVBS.1101', `cannot create an image of ${req.sizeBytes} bytes here (${code})`);
      throw err;
    }
    await fh.close();
    const at = now();
    const record: VolumeRecord = {
      projectId,
      volumeId,
      name: req.name,
      sizeBytes: req.sizeBytes,
      path,
      managed: true,
      ...(req.kmsKeyId ? { kmsKeyId: req.kmsKeyId } : {}),
      status: 'available',
      createdAt: at,
      updatedAt: at,
    };
    try {
      await this.volumes.create(record);
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
    return record;
  }

  /** Registers an existing image file or block device (not removed when the volume is deleted). */
  async registerVolume(projectId: string, req: RegisterVolumeRequest): Promise<VolumeRecord> {
    checkId('project', projectId);
    this.validateVolumeName(req.name);
    if (!this.allowPathRegistration) throw badRequest('OpenVBS.1102', 'registering existing paths is disabled; create a volume with a size instead');
    if (!isAbsolute(req.path)) throw badRequest('OpenVBS.1101', 'path must be absolute');
    let real: string;
    try {
      real = await realpath(req.path);
    } catch {
      throw badRequest('OpenVBS.1101', `path ${req.path} does not exist`);
    }
    // The managed area holds other volumes' (and projects') images: never registrable by path.
    const managedArea = join(this.dataDir, 'volumes');
    const managedReal = await realpath(managedArea).catch(() => managedArea);
    if (isInside(managedReal, real)) throw badRequest('OpenVBS.1101', 'path lies inside the managed volume folder');
    const st = await stat(real).catch(() => {
      throw badRequest('OpenVBS.1101', `path ${req.path} cannot be inspected by the service`);
    });
    let sizeBytes: number;
    if (st.isFile()) sizeBytes = st.size;
    else if (st.isBlockDevice()) {
      const size = req.sizeBytes ?? (await blockDeviceSize(real));
      if (size === undefined) throw badRequest('OpenVBS.1101', `cannot read the size of block device ${req.path}; pass size_bytes`);
      sizeBytes = size;
    } else throw badRequest('OpenVBS.1101', `path ${req.path} is neither a regular file nor a block device`);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1) throw badRequest('OpenVBS.1101', `path ${req.path} is empty`);
    try {
      await access(real, constants.R_OK);
    } catch {
      throw badRequest('OpenVBS.1101', `path ${req.path} is not readable by the service`);
    }
    const existing = await this.volumes.list(projectId);
    if (existing.some((v) => v.path === real || v.path === req.path)) throw new ServiceError(409, 'OpenVBS.1103', `path ${req.path} is already registered`);
    const at = now();
    const record: VolumeRecord = {
      projectId,
      volumeId: randomUUID(),
      name: req.name,
      sizeBytes,
      path: real,
      managed: false,
      ...(req.kmsKeyId ? { kmsKeyId: req.kmsKeyId } : {}),
      status: 'available',
      createdAt: at,
      updatedAt: at,
    };
    await this.volumes.create(record);
    return record;
  }

  async listVolumes(projectId: string): Promise<VolumeRecord[]> {
    checkId('project', projectId);
    const list = await this.volumes.list(projectId);
    return list.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.volumeId < b.volumeId ? -1 : 1));
  }

  async getVolume(projectId: string, volumeId: string): Promise<VolumeRecord> {
    if (!ID_PATTERN.test(projectId) || !ID_PATTERN.test(volumeId)) throw notFound(`volume ${volumeId} not found`);
    const volume = await this.volumes.get(projectId, volumeId);
    if (!volume) throw notFound(`volume ${volumeId} not found`);
    return volume;
  }

  /** Removes the volume from the inventory (and its image when the service created it). Refused while a job holds it. */
  async deleteVolume(projectId: string, volumeId: string): Promise<void> {
    const volume = await this.getVolume(projectId, volumeId);
    const busy = () => badRequest('VolumeBackup.0012', `volume ${volumeId} is ${volume.status} (job ${volume.lockJobId ?? 'unknown'}); try again when it has finished`);
    if (volume.lockJobId) throw busy();
    if (!(await this.volumes.delete(projectId, volumeId))) {
      const current = await this.volumes.get(projectId, volumeId);
      if (!current) throw notFound(`volume ${volumeId} not found`);
      throw busy();
    }
    if (volume.managed) await rm(volume.path, { force: true });
  }

  // ---- tokens ----

  async createToken(projectId: string, description?: string): Promise<{ token: string; record: TokenRecord }> {
    checkId('project', projectId);
    if (description !== undefined && description.length > 255) throw badRequest('VolumeBackup.0002', 'token description must be at most 255 characters');
    return this.tokens.issue(projectId, description);
  }

  /** The project a token belongs to, or undefined for an unknown token. */
  async authenticate(token: string | undefined): Promise<string | undefined> {
    if (!token) return undefined;
    return (await this.tokens.resolve(token))?.projectId;
  }
}

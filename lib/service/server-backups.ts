// Server backups (CSBS): protect a server (all its disks at one instant), list and show checkpoint items,
// restore a checkpoint onto a server, delete a checkpoint with its disk backups. Each becomes a job with one
// sub-job per disk, plus a workflow execution (server-backup, server-restore, checkpoint-delete).
//
// Every disk of the server is locked by its own sub-job before the execution starts (all or none), so a
// server backup never races a VBS backup or restore of one of its disks.
import { CheckpointStateError } from '../catalog/checkpoints.ts';
import { MAX_SERVER_DISKS } from '../catalog/servers.ts';
import type { CheckpointDisk, CheckpointRecord, CheckpointStatus, CheckpointStore } from '../catalog/checkpoints.ts';
import type { BackupStore } from '../catalog/backups.ts';
import { jobProgress, subJobsOf } from '../catalog/jobs.ts';
import type { JobRecord, JobStore } from '../catalog/jobs.ts';
import type { VolumeStore } from '../catalog/volumes.ts';
import { ServerNotFoundError } from '../engine/ports.ts';
import type { ServerInfo, VolumeProvider } from '../engine/ports.ts';
import type { CheckpointDeleteInput, ServerBackupInput, ServerRestoreInput } from '../workflows/contracts.ts';
import type { WorkflowStarter } from '../workflows/registry.ts';
import { distinctTags, validateBackupDescription, validateBackupName, validateTags } from './backup-rules.ts';
import type { BackupTag } from './backup-rules.ts';
import { ServiceError, badRequest, conflict, serverNotFound } from './errors.ts';
import { checkProjectId, isId, newBackupId, newJobId } from './ids.ts';
import { JobLauncher } from './job-launcher.ts';
import { ResourceTags } from './resource-tags.ts';
import { MAX_VOLUME_GB, gigabytes } from './sizes.ts';
import { VolumeLocks } from './volume-locks.ts';

/** CSBS's fixed provider id: every path under `/providers/{provider_id}` names it. */
export const CSBS_PROVIDER_ID = 'fc4d5750-22e7-4798-8a46-f48f62c4c1da';
export const SERVER_RESOURCE_TYPE = 'OS::Nova::Server';

export const checkpointNotFound = (id: string) => new ServiceError(404, 'OpenVBS.0404', `server backup ${id} not found`);
const itemNotFound = (id: string) => new ServiceError(404, 'OpenVBS.0404', `checkpoint item ${id} not found`);

export interface ServerBackupServiceDeps {
  checkpoints: CheckpointStore;
  backups: BackupStore;
  jobs: JobStore;
  volumes: VolumeStore;
  provider: VolumeProvider;
  workflows: WorkflowStarter;
  /** Local servers must be stopped before a restore; EC2 instances are stopped by the restore itself. */
  restoreNeedsStoppedServer: boolean;
}

export interface ProtectRequest {
  name?: string;
  description?: string;
  /** false: every disk backed up in full. Default true. */
  incremental?: boolean;
  tags?: BackupTag[];
  /** Made by a backup policy (CSBS `extend_info.auto_trigger`), and which one. */
  autoTrigger?: boolean;
  policyId?: string;
}

export interface RestoreRequest {
  checkpointId: string;
  /** The checkpoint item restored (its only one); checked when given. */
  itemId?: string;
  /** The server restored onto; default the server backed up. */
  serverId?: string;
  /** Which disk backup goes onto which volume; default each disk onto the server's disk on the same device. */
  volumes?: Array<{ backupId: string; volumeId: string }>;
  powerOn: boolean;
}

/** Why a server cannot be protected now, or undefined when it can. */
export interface Refusal {
  code: string;
  message: string;
}

export interface CheckpointItemsQuery {
  status?: string;
  name?: string;
  resourceId?: string;
  resourceName?: string;
  checkpointId?: string;
  startTime?: string;
  endTime?: string;
  sort?: string;
  limit?: number;
  offset?: number;
  marker?: string;
}

/** A checkpoint with its job's progress and the disk backups' state, as the API shows an item. */
export interface CheckpointView {
  checkpoint: CheckpointRecord;
  progress: number;
  job?: JobRecord;
  /** The disks' jobs (sub-jobs of `job`), in the order they were created. */
  subJobs: JobRecord[];
  /** Each disk backup's record (undefined once deleted). */
  diskBackups: Array<{ disk: CheckpointDisk; name?: string; status?: string; sizeBytes?: number; parentId?: string; storedBytes?: number; logicalBytes?: number }>;
}

const MANUAL_PREFIX = 'manualbk_';

export class ServerBackupService {
  private readonly deps: ServerBackupServiceDeps;
  private readonly launcher: JobLauncher;
  private readonly locks: VolumeLocks;
  /** The tag routes of server backups (/csbs_backup/{checkpoint_item_id}/tags…), by the VBS policy tags' rules. */
  readonly tagging: ResourceTags<CheckpointRecord>;

  constructor(deps: ServerBackupServiceDeps) {
    this.deps = deps;
    this.launcher = new JobLauncher(deps.jobs, deps.workflows);
    this.locks = new VolumeLocks(deps.volumes, deps.jobs, deps.provider);
    this.tagging = new ResourceTags<CheckpointRecord>({
      what: 'server backup',
      get: (projectId, itemId) => this.checkpointOfItem(projectId, itemId),
      list: async (projectId) => (await deps.checkpoints.list(projectId)).sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.itemId < b.itemId ? -1 : 1)),
      tagsOf: (checkpoint) => checkpoint.tags,
      setTags: async ({ projectId, checkpointId, itemId }, tags) => {
        await deps.checkpoints.update(projectId, checkpointId, { tags }).catch((err: unknown) => {
          throw err instanceof CheckpointStateError ? itemNotFound(itemId) : err;
        });
      },
    });
  }

  private async server(projectId: string, serverId: string): Promise<ServerInfo> {
    if (!isId(serverId)) throw serverNotFound(serverId);
    try {
      return await this.deps.provider.describeServer(projectId, serverId);
    } catch (err) {
      if (err instanceof ServerNotFoundError) throw serverNotFound(serverId);
      throw err;
    }
  }

  /** Why the server cannot be backed up now (CSBS check_protectable), or undefined. */
  async protectRefusal(projectId: string, serverId: string): Promise<Refusal | undefined> {
    checkProjectId(projectId);
    let server: ServerInfo;
    try {
      server = await this.server(projectId, serverId);
    } catch (err) {
      if (err instanceof ServiceError) return { code: err.code, message: err.message };
      throw err;
    }
    if (server.status === 'error') return { code: 'OpenVBS.1501', message: `server ${serverId} is in error` };
    if (!server.disks.length) return { code: 'OpenVBS.1502', message: `server ${serverId} has no disks` };
    if (server.disks.length > MAX_SERVER_DISKS) return { code: 'OpenVBS.1502', message: `server ${serverId} has ${server.disks.length} disks; a server backup takes at most ${MAX_SERVER_DISKS}` };
    const totalGb = gigabytes(server.disks.reduce((sum, d) => sum + d.sizeBytes, 0));
    if (totalGb > MAX_VOLUME_GB) return { code: 'OpenVBS.1502', message: `server ${serverId} has ${totalGb} GB of disks; a server backup takes at most ${MAX_VOLUME_GB} GB in all` };
    for (const disk of server.disks) {
      const volume = await this.locks.current(projectId, disk.volumeId).catch(() => undefined);
      if (volume?.lockJobId) return { code: 'VolumeBackup.0012', message: `disk ${disk.device} (${disk.volumeId}) is busy with job ${volume.lockJobId}` };
      if (volume && volume.status === 'error') return { code: 'VolumeBackup.0012', message: `disk ${disk.device} (${disk.volumeId}) is in error` };
    }
    return undefined;
  }

  async protect(projectId: string, serverId: string, req: ProtectRequest): Promise<CheckpointRecord> {
    checkProjectId(projectId);
    const server = await this.server(projectId, serverId);
    const checkpointId = newBackupId();
    const name = req.name ?? `${MANUAL_PREFIX}${checkpointId.slice(0, 8)}`;
    validateBackupName(name);
    validateBackupDescription(req.description);
    validateTags(req.tags);
    const refusal = await this.protectRefusal(projectId, serverId);
    if (refusal) throw refusal.code === 'OpenVBS.1502' ? badRequest(refusal.code, refusal.message) : conflict(refusal.code, refusal.message);

    const jobId = newJobId();
    const now = new Date().toISOString();
    const disks: CheckpointDisk[] = server.disks.map((d) => ({ volumeId: d.volumeId, device: d.device, bootable: d.bootable, sizeBytes: d.sizeBytes, backupId: newBackupId(), jobId: newJobId() }));
    const checkpoint: CheckpointRecord = {
      projectId,
      checkpointId,
      itemId: newBackupId(),
      serverId,
      serverName: server.name,
      name,
      ...(req.description !== undefined ? { description: req.description } : {}),
      status: 'protecting',
      incremental: false,
      ...(req.incremental === false ? { forceFull: true } : {}),
      jobId,
      disks,
      tags: req.tags ? distinctTags(req.tags) : [],
      autoTrigger: req.autoTrigger ?? false,
      ...(req.policyId !== undefined ? { policyId: req.policyId } : {}),
      createdAt: now,
      updatedAt: now,
    };
    await this.locks.lockAll(projectId, disks, 'backing-up', ['available', 'in-use']);
    const undoDisks = () => this.locks.releaseAll(projectId, disks);
    try {
      await this.deps.checkpoints.create(checkpoint);
      await this.createSubJobs(projectId, jobId, 'bksCreateBackup', disks.map((d) => ({ jobId: d.jobId, entities: { backup_id: d.backupId, volume_id: d.volumeId, checkpoint_id: checkpointId } })));
    } catch (err) {
      await undoDisks();
      throw err;
    }
    const input: ServerBackupInput = { projectId, jobId, backupId: checkpointId, serverId };
    await this.launcher.launch({
      projectId,
      jobId,
      jobType: 'bksCreateServerBackup',
      entities: { checkpoint_id: checkpointId, backup_id: checkpointId, server_id: serverId },
      workflow: 'server-backup',
      input,
      undo: () =>
        Promise.allSettled([
          undoDisks(),
          this.endSubJobs(projectId, jobId, 'the server backup could not be started'),
          this.deps.checkpoints.update(projectId, checkpointId, { status: 'error', failReason: 'the server backup could not be started' }, ['protecting']),
        ]),
    });
    return checkpoint;
  }

  /** Why the restore cannot be done as asked now (CSBS check_restorable), or undefined. */
  async restoreRefusal(projectId: string, req: RestoreRequest): Promise<Refusal | undefined> {
    try {
      const { targets } = await this.planRestore(projectId, req);
      for (const t of targets) {
        const volume = await this.locks.current(projectId, t.volumeId);
        if (volume.lockJobId) return { code: 'VolumeBackup.0012', message: `volume ${t.volumeId} is busy with job ${volume.lockJobId}` };
        if (volume.status !== 'available' && volume.status !== 'in-use') return { code: 'VolumeBackup.0012', message: `volume ${t.volumeId} is ${volume.status}` };
      }
    } catch (err) {
      if (err instanceof ServiceError) return { code: err.code, message: err.message };
      throw err;
    }
    return undefined;
  }

  /** The checks of a restore that change nothing: what is restored onto which disk of which server. */
  private async planRestore(projectId: string, req: RestoreRequest) {
    checkProjectId(projectId);
    const checkpoint = await this.checkpoint(projectId, req.checkpointId);
    if (req.itemId !== undefined && req.itemId !== checkpoint.itemId) throw new ServiceError(404, 'OpenVBS.0404', `checkpoint item ${req.itemId} not found in server backup ${checkpoint.checkpointId}`);
    if (checkpoint.status !== 'available') throw conflict('VolumeBackup.0089', `server backup ${checkpoint.checkpointId} is ${checkpoint.status}; only an available one can be restored`);
    const serverId = req.serverId ?? checkpoint.serverId;
    const server = await this.server(projectId, serverId);
    if (server.status === 'error') throw conflict('OpenVBS.1501', `server ${serverId} is in error`);
    if (server.status === 'running' && this.deps.restoreNeedsStoppedServer) throw conflict('OpenVBS.1503', `server ${serverId} is running; stop it before restoring onto it`);
    return { checkpoint, serverId, targets: this.restoreTargets(checkpoint, server, req.volumes) };
  }

  async restore(projectId: string, req: RestoreRequest): Promise<{ jobId: string; checkpoint: CheckpointRecord }> {
    const { checkpoint, serverId, targets } = await this.planRestore(projectId, req);
    const jobId = newJobId();
    const pairs = targets.map((t) => ({ volumeId: t.volumeId, jobId: newJobId(), backupId: t.disk.backupId }));
    await this.locks.lockAll(projectId, pairs, 'restoring', ['available', 'in-use']);
    const release = () => this.locks.releaseAll(projectId, pairs);
    try {
      await this.deps.checkpoints.transition(projectId, checkpoint.checkpointId, { from: ['available'], to: 'restoring', backupFrom: ['available'], backupTo: 'restoring' });
    } catch (err) {
      await release();
      if (err instanceof CheckpointStateError) throw conflict('VolumeBackup.0089', `server backup ${checkpoint.checkpointId} is no longer available`);
      throw err;
    }
    await this.createSubJobs(projectId, jobId, 'bksRestoreBackup', pairs.map((p) => ({ jobId: p.jobId, entities: { backup_id: p.backupId, volume_id: p.volumeId, checkpoint_id: checkpoint.checkpointId } })));
    const input: ServerRestoreInput = { projectId, jobId, backupId: checkpoint.checkpointId, serverId, powerOn: req.powerOn };
    await this.launcher.launch({
      projectId,
      jobId,
      jobType: 'bksRestoreServerBackup',
      entities: { checkpoint_id: checkpoint.checkpointId, backup_id: checkpoint.checkpointId, server_id: serverId },
      workflow: 'server-restore',
      input,
      undo: () =>
        Promise.allSettled([
          release(),
          this.endSubJobs(projectId, jobId, 'the server restore could not be started'),
          this.deps.checkpoints.transition(projectId, checkpoint.checkpointId, { from: ['restoring'], to: 'available', backupFrom: ['restoring'], backupTo: 'available' }),
        ]),
    });
    return { jobId, checkpoint };
  }

  /** Each disk backup onto a disk of the server at least as large: as asked, else the disk on the same device. */
  private restoreTargets(checkpoint: CheckpointRecord, server: ServerInfo, asked: RestoreRequest['volumes']): Array<{ disk: CheckpointDisk; volumeId: string }> {
    const byVolume = new Map(server.disks.map((d) => [d.volumeId, d]));
    const targets = checkpoint.disks.map((disk) => {
      const explicit = asked?.find((v) => v.backupId === disk.backupId);
      const target = explicit ? byVolume.get(explicit.volumeId) : server.disks.find((d) => d.device === disk.device);
      if (!target) {
        throw badRequest('OpenVBS.1504', explicit ? `volume ${explicit.volumeId} is not a disk of server ${server.serverId}` : `server ${server.serverId} has no disk on ${disk.device} to restore disk backup ${disk.backupId} onto`);
      }
      if (target.sizeBytes < disk.sizeBytes) throw badRequest('VolumeBackup.0209', `disk ${target.volumeId} has ${target.sizeBytes} bytes, the backup of ${disk.device} needs ${disk.sizeBytes}`);
      return { disk, volumeId: target.volumeId };
    });
    for (const v of asked ?? []) {
      if (!checkpoint.disks.some((d) => d.backupId === v.backupId)) throw badRequest('OpenVBS.1504', `backup ${v.backupId} is not a disk backup of server backup ${checkpoint.checkpointId}`);
    }
    if (new Set(targets.map((t) => t.volumeId)).size !== targets.length) throw badRequest('OpenVBS.1504', 'two disk backups would be restored onto the same volume');
    return targets;
  }

  async delete(projectId: string, checkpointId: string): Promise<{ jobId: string }> {
    checkProjectId(projectId);
    const checkpoint = await this.checkpoint(projectId, checkpointId);
    const from: CheckpointStatus[] = ['available', 'error'];
    if (!from.includes(checkpoint.status)) throw conflict('OpenVBS.1001', `server backup ${checkpointId} is ${checkpoint.status}; only available or error ones can be deleted`);
    try {
      await this.deps.checkpoints.transition(projectId, checkpointId, { from, to: 'deleting', backupFrom: ['available', 'error'], backupTo: 'deleting' });
    } catch (err) {
      if (err instanceof CheckpointStateError) throw conflict('OpenVBS.1001', `server backup ${checkpointId} changed status; try again`);
      throw err;
    }
    const jobId = newJobId();
    const input: CheckpointDeleteInput = { projectId, jobId, backupId: checkpointId };
    const status = checkpoint.status;
    await this.launcher.launch({
      projectId,
      jobId,
      jobType: 'bksDeleteServerBackup',
      entities: { checkpoint_id: checkpointId, backup_id: checkpointId, server_id: checkpoint.serverId },
      workflow: 'checkpoint-delete',
      input,
      undo: () => this.deps.checkpoints.transition(projectId, checkpointId, { from: ['deleting'], to: status, backupFrom: ['deleting'], backupTo: status === 'available' ? 'available' : 'error' }),
    });
    return { jobId };
  }

  async checkpoint(projectId: string, checkpointId: string): Promise<CheckpointRecord> {
    if (!isId(projectId) || !isId(checkpointId)) throw checkpointNotFound(checkpointId);
    const checkpoint = await this.deps.checkpoints.get(projectId, checkpointId);
    if (!checkpoint) throw checkpointNotFound(checkpointId);
    return checkpoint;
  }

  private async checkpointOfItem(projectId: string, itemId: string): Promise<CheckpointRecord> {
    if (!isId(projectId) || !isId(itemId)) throw itemNotFound(itemId);
    const checkpoint = await this.deps.checkpoints.getByItem(projectId, itemId);
    if (!checkpoint) throw itemNotFound(itemId);
    return checkpoint;
  }

  async item(projectId: string, itemId: string): Promise<CheckpointView> {
    return this.view(await this.checkpointOfItem(projectId, itemId));
  }

  /** Items matching the query, newest first (or as `sort` says), and how many match in all. */
  async items(projectId: string, query: CheckpointItemsQuery): Promise<{ items: CheckpointView[]; total: number }> {
    checkProjectId(projectId);
    let all = await this.deps.checkpoints.list(projectId);
    const q = query;
    all = all.filter(
      (c) =>
        (q.status === undefined || c.status === q.status) &&
        (q.name === undefined || c.name === q.name) &&
        (q.resourceId === undefined || c.serverId === q.resourceId) &&
        (q.resourceName === undefined || c.serverName === q.resourceName) &&
        (q.checkpointId === undefined || c.checkpointId === q.checkpointId) &&
        (q.startTime === undefined || c.createdAt >= q.startTime) &&
        (q.endTime === undefined || c.createdAt <= q.endTime),
    );
    const [key = 'created_at', dir = 'desc'] = (q.sort ?? 'created_at:desc').split(':');
    const field = key === 'name' ? 'name' : key === 'status' ? 'status' : 'createdAt';
    all.sort((a, b) => (a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : a.checkpointId.localeCompare(b.checkpointId)) * (dir === 'asc' ? 1 : -1));
    let start = q.offset ?? 0;
    if (q.marker !== undefined) {
      const at = all.findIndex((c) => c.itemId === q.marker);
      if (at < 0) throw new ServiceError(404, 'OpenVBS.0404', `marker ${q.marker} not found`);
      start = at + 1;
    }
    const page = all.slice(start, start + (q.limit ?? 1000));
    // The project's jobs read once for the whole page, not once per item.
    const jobs = page.length ? await this.deps.jobs.list(projectId) : [];
    return { items: await Promise.all(page.map((c) => this.view(c, jobs))), total: all.length };
  }

  /** The item as the API shows it; `projectJobs` when the caller has read them already. */
  private async view(checkpoint: CheckpointRecord, projectJobs?: readonly JobRecord[]): Promise<CheckpointView> {
    const jobs = projectJobs ?? (await this.deps.jobs.list(checkpoint.projectId));
    const job = jobs.find((j) => j.jobId === checkpoint.jobId);
    const subJobs = job ? subJobsOf(jobs, job.jobId) : [];
    const diskBackups = await Promise.all(
      checkpoint.disks.map(async (disk) => {
        const b = await this.deps.backups.getBackup(checkpoint.projectId, disk.backupId);
        return {
          disk,
          ...(b ? { name: b.name, status: b.status, sizeBytes: b.sizeBytes, ...(b.parentId ? { parentId: b.parentId } : {}), ...(b.stats ? { storedBytes: b.stats.storedBytes, logicalBytes: b.stats.logicalBytes } : {}) } : {}),
        };
      }),
    );
    let progress = checkpoint.status === 'protecting' ? 0 : checkpoint.status === 'error' ? 0 : 100;
    if (checkpoint.status === 'protecting' && subJobs.length) {
      const done = subJobs.reduce((sum, j) => sum + j.bytesDone, 0);
      const total = subJobs.reduce((sum, j) => sum + (j.bytesTotal || 0), 0) || checkpoint.disks.reduce((s, d) => s + d.sizeBytes, 0);
      progress = Math.min(99, Math.floor((done / total) * 100));
    } else if (job && checkpoint.status === 'protecting') {
      progress = jobProgress(job);
    }
    return { checkpoint, progress, ...(job ? { job } : {}), subJobs, diskBackups };
  }

  /** Backups (checkpoint items) and their capacity in MB, against the project's quotas (-1: none). */
  async quotas(projectId: string): Promise<{ backups: number; capacityMb: number }> {
    checkProjectId(projectId);
    const all = await this.deps.checkpoints.list(projectId);
    const capacity = all.reduce((sum, c) => sum + c.disks.reduce((s, d) => s + d.sizeBytes, 0), 0);
    return { backups: all.length, capacityMb: Math.ceil(capacity / (1024 * 1024)) };
  }

  private async createSubJobs(projectId: string, parentJobId: string, jobType: JobRecord['jobType'], subs: Array<{ jobId: string; entities: Record<string, string> }>) {
    // A millisecond apart, so the disks' jobs list in the order of the disks.
    const start = Date.now();
    for (const [i, sub] of subs.entries()) {
      const createdAt = new Date(start + i).toISOString();
      await this.deps.jobs.create({ projectId, jobId: sub.jobId, jobType, status: 'INIT', entities: sub.entities, bytesDone: 0, bytesTotal: 0, createdAt, parentJobId });
    }
  }

  private async endSubJobs(projectId: string, parentJobId: string, reason: string) {
    for (const sub of await this.deps.jobs.listSubJobs(projectId, parentJobId)) {
      await this.deps.jobs.update(projectId, sub.jobId, { status: 'FAIL', endTime: new Date().toISOString(), errorCode: 'VolumeBackup.0014', failReason: reason });
    }
  }
}

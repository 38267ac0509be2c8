// The local server inventory: servers group volumes of the local inventory as disks, have a power status
// (running, stopped) and, optionally, freeze and thaw hooks that hold the server's writers while its disks
// are captured together (./local-provider.ts). The service runs nothing when a server is started or
// stopped: the status is what the operator says the machine using the images is doing, and what a group
// snapshot trusts (a stopped server's disks are consistent without hooks).
//
// Hooks are commands the service runs on its own host: argv arrays (never a shell string), the program an
// absolute path. Setting them is an administrator's act (every server route needs an admin token) that
// the operator must also allow with OPENVBS_ALLOW_SERVER_HOOKS=1, as registering paths needs
// OPENVBS_VOLUME_ROOTS: an API token alone never runs a command on the host.
//
// Error codes: OpenVBS.1401 (400) invalid server request; OpenVBS.1402 (409) a disk cannot be attached or
// detached (attached elsewhere or twice, not available, device taken, too many disks); OpenVBS.1403 (403) hooks not
// allowed by the operator; VolumeBackup.0012 (409) a job holds a disk; OpenVBS.0404 unknown server/volume.
import { randomUUID } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { MAX_SERVER_DISKS, ServerWriteConflictError } from '../catalog/servers.ts';
import type { LocalServerStatus, ServerDiskRecord, ServerRecord, ServerStore } from '../catalog/servers.ts';
import type { VolumeRecord, VolumeStore } from '../catalog/volumes.ts';
import { ServiceError, badRequest, conflict, notFound, volumeNotFound, serverNotFound } from '../service/errors.ts';
import { checkProjectId, isId } from '../service/ids.ts';
import { checkText } from '../service/validation.ts';

export const SERVER_NAME_MAX = 255;
/** Device names: /dev/vda, /dev/sdb, /dev/xvdc, /dev/hdd... (up to two letters: /dev/vdaa). */
export const DEVICE_PATTERN = /^\/dev\/(?:vd|sd|xvd|hd)[a-z]{1,2}$/;
export const HOOK_MAX_ARGS = 64;
export const HOOK_ARG_MAX = 4096;
export const HOOK_TIMEOUT_MAX_SECONDS = 3600;

export interface ServerDiskRequest {
  volumeId: string;
  /** Default: the first free /dev/vdX. */
  device?: string;
  /** Default: true for a server's first disk, false after. */
  bootable?: boolean;
}

export interface CreateServerRequest {
  name: string;
  /** Default `running`: never claim a server is stopped (its disks consistent without hooks) unless told. */
  status?: LocalServerStatus;
  disks?: ServerDiskRequest[];
}

export interface ServerHooksRequest {
  freeze: string[];
  thaw: string[];
  timeoutSeconds?: number;
}

export interface ServerInventoryDeps {
  servers: ServerStore;
  volumes: VolumeStore;
  /** Whether hooks may be set; default from OPENVBS_ALLOW_SERVER_HOOKS (`1` allows). */
  allowHooks?: boolean;
}

/** Attempts of a disk change that loses a race against another change of the same server. */
const CHANGE_ATTEMPTS = 5;

const invalid = (message: string) => badRequest('OpenVBS.1401', message);
const attachConflict = (message: string) => conflict('OpenVBS.1402', message);

const byCreation = (a: ServerRecord, b: ServerRecord) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.serverId < b.serverId ? -1 : 1);

export function hooksAllowedFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.OPENVBS_ALLOW_SERVER_HOOKS === '1';
}

/** `/dev/vda`, `/dev/vdb`, ... `/dev/vdz`: the first one no disk of the server uses. */
function freeDevice(taken: ReadonlySet<string>): string {
  for (let i = 0; i < 26; i++) {
    const device = `/dev/vd${String.fromCharCode(97 + i)}`;
    if (!taken.has(device)) return device;
  }
  throw attachConflict('no free device name from /dev/vda to /dev/vdz; name one');
}

function checkHookArgv(argv: unknown, which: string): string[] {
  if (!Array.isArray(argv) || argv.length < 1 || argv.length > HOOK_MAX_ARGS) throw invalid(`${which} hook must be a list of 1-${HOOK_MAX_ARGS} arguments (the program first)`);
  for (const arg of argv) {
    if (typeof arg !== 'string' || arg.length > HOOK_ARG_MAX || arg.includes('\0')) throw invalid(`${which} hook arguments must be strings of at most ${HOOK_ARG_MAX} characters without NUL`);
  }
  const program = argv[0] as string;
  if (!isAbsolute(program)) throw invalid(`${which} hook program must be an absolute path (it is run without a shell and without a PATH search)`);
  return [...(argv as string[])];
}

export class ServerInventory {
  private readonly servers: ServerStore;
  private readonly volumes: VolumeStore;
  private readonly allowHooks: boolean;

  constructor(deps: ServerInventoryDeps) {
    this.servers = deps.servers;
    this.volumes = deps.volumes;
    this.allowHooks = deps.allowHooks ?? hooksAllowedFromEnv();
  }

  async create(projectId: string, req: CreateServerRequest): Promise<ServerRecord> {
    checkProjectId(projectId);
    checkServerName(req.name);
    const status = req.status ?? 'running';
    if (status !== 'running' && status !== 'stopped') throw invalid('status must be running or stopped');
    const wanted = req.disks ?? [];
    if (wanted.length > MAX_SERVER_DISKS) throw invalid(`a server has at most ${MAX_SERVER_DISKS} disks`);
    const disks: ServerDiskRecord[] = [];
    for (const d of wanted) disks.push(await this.newDisk(projectId, disks, d));
    const at = new Date().toISOString();
    const record: ServerRecord = { projectId, serverId: randomUUID(), name: req.name, status, disks, version: 1, createdAt: at, updatedAt: at };
    try {
      await this.servers.create(record);
    } catch (err) {
      if (err instanceof ServerWriteConflictError) throw await this.whyNotAttachable(projectId, disks.map((d) => d.volumeId));
      throw err;
    }
    return record;
  }

  /** The project's servers, oldest first. */
  async list(projectId: string): Promise<ServerRecord[]> {
    checkProjectId(projectId);
    return (await this.servers.list(projectId)).sort(byCreation);
  }

  async get(projectId: string, serverId: string): Promise<ServerRecord> {
    if (!isId(projectId) || !isId(serverId)) throw serverNotFound(serverId);
    const server = await this.servers.get(projectId, serverId);
    if (!server) throw serverNotFound(serverId);
    return server;
  }

  /** Marks the server running (no error when it already is). */
  start(projectId: string, serverId: string): Promise<ServerRecord> {
    return this.setStatus(projectId, serverId, 'running');
  }

  /** Marks the server stopped (no error when it already is). */
  stop(projectId: string, serverId: string): Promise<ServerRecord> {
    return this.setStatus(projectId, serverId, 'stopped');
  }

  private async setStatus(projectId: string, serverId: string, status: LocalServerStatus): Promise<ServerRecord> {
    await this.get(projectId, serverId);
    const updated = await this.servers.setStatus(projectId, serverId, status);
    if (!updated) throw serverNotFound(serverId);
    return updated;
  }

  /** Deletes the server and detaches its disks (the volumes stay). Refused while a job holds one of them. */
  async delete(projectId: string, serverId: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const server = await this.get(projectId, serverId);
      await this.checkDetachable(projectId, server, server.disks.map((d) => d.volumeId));
      try {
        await this.servers.delete(server);
        return;
      } catch (err) {
        if (!(err instanceof ServerWriteConflictError) || attempt + 1 >= CHANGE_ATTEMPTS) throw this.explainConflict(err, serverId);
      }
    }
  }

  async attach(projectId: string, serverId: string, req: ServerDiskRequest): Promise<ServerRecord> {
    for (let attempt = 0; ; attempt++) {
      const server = await this.get(projectId, serverId);
      if (server.disks.some((d) => d.volumeId === req.volumeId)) throw attachConflict(`volume ${req.volumeId} is already attached to server ${serverId}`);
      if (server.disks.length >= MAX_SERVER_DISKS) throw attachConflict(`server ${serverId} has ${MAX_SERVER_DISKS} disks, the most a server may have`);
      const disk = await this.newDisk(projectId, server.disks, req);
      try {
        return await this.servers.changeDisks(server, [...server.disks, disk], { attach: [req.volumeId] });
      } catch (err) {
        if (!(err instanceof ServerWriteConflictError)) throw err;
        // Lost to a change of the server: compute again from the new version. A volume that is not free: say why.
        const current = await this.servers.get(projectId, serverId);
        if (current?.version === server.version) throw await this.whyNotAttachable(projectId, [req.volumeId]);
        if (attempt + 1 >= CHANGE_ATTEMPTS) throw this.explainConflict(err, serverId);
      }
    }
  }

  async detach(projectId: string, serverId: string, volumeId: string): Promise<ServerRecord> {
    for (let attempt = 0; ; attempt++) {
      const server = await this.get(projectId, serverId);
      if (!server.disks.some((d) => d.volumeId === volumeId)) throw notFound(`volume ${volumeId} is not attached to server ${serverId}`);
      await this.checkDetachable(projectId, server, [volumeId]);
      try {
        return await this.servers.changeDisks(
          server,
          server.disks.filter((d) => d.volumeId !== volumeId),
          { detach: [volumeId] },
        );
      } catch (err) {
        if (!(err instanceof ServerWriteConflictError) || attempt + 1 >= CHANGE_ATTEMPTS) throw this.explainConflict(err, serverId);
      }
    }
  }

  /** Sets both hooks (an administrator's act the operator must allow: OPENVBS_ALLOW_SERVER_HOOKS=1). */
  async setHooks(projectId: string, serverId: string, req: ServerHooksRequest): Promise<ServerRecord> {
    await this.get(projectId, serverId);
    if (!this.allowHooks) {
      throw new ServiceError(403, 'OpenVBS.1403', 'server hooks are disabled: the operator has not allowed the service to run commands (OPENVBS_ALLOW_SERVER_HOOKS=1)');
    }
    const freeze = checkHookArgv(req.freeze, 'freeze');
    const thaw = checkHookArgv(req.thaw, 'thaw');
    const timeout = req.timeoutSeconds;
    if (timeout !== undefined && !(Number.isSafeInteger(timeout) && timeout >= 1 && timeout <= HOOK_TIMEOUT_MAX_SECONDS)) {
      throw invalid(`hook timeout must be 1-${HOOK_TIMEOUT_MAX_SECONDS} seconds`);
    }
    const updated = await this.servers.setHooks(projectId, serverId, { freeze, thaw, ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}) });
    if (!updated) throw serverNotFound(serverId);
    return updated;
  }

  /** Removes both hooks: a running server's backups are then not crash-consistent (unless cloned). */
  async clearHooks(projectId: string, serverId: string): Promise<ServerRecord> {
    await this.get(projectId, serverId);
    const updated = await this.servers.setHooks(projectId, serverId, undefined);
    if (!updated) throw serverNotFound(serverId);
    return updated;
  }

  /** Validates one disk to add to `disks` (the volume must exist here and be free to attach). */
  private async newDisk(projectId: string, disks: readonly ServerDiskRecord[], req: ServerDiskRequest): Promise<ServerDiskRecord> {
    if (!isId(req.volumeId)) throw volumeNotFound(req.volumeId);
    if (disks.some((d) => d.volumeId === req.volumeId)) throw attachConflict(`volume ${req.volumeId} is listed twice`);
    const taken = new Set(disks.map((d) => d.device));
    if (req.device !== undefined) {
      if (!DEVICE_PATTERN.test(req.device)) throw invalid(`device ${req.device} is not a device name like /dev/vda, /dev/sdb or /dev/xvdc`);
      if (taken.has(req.device)) throw attachConflict(`device ${req.device} is already taken on this server`);
    }
    const volume = await this.volumes.get(projectId, req.volumeId);
    if (!volume) throw volumeNotFound(req.volumeId);
    const problem = attachProblem(volume);
    if (problem) throw problem;
    return { volumeId: req.volumeId, device: req.device ?? freeDevice(taken), bootable: req.bootable ?? disks.length === 0 };
  }

  /** Why (one of) the volumes could not be attached, as read now. */
  private async whyNotAttachable(projectId: string, volumeIds: string[]): Promise<ServiceError> {
    for (const volumeId of volumeIds) {
      const volume = await this.volumes.get(projectId, volumeId);
      if (!volume) return volumeNotFound(volumeId);
      const problem = attachProblem(volume);
      if (problem) return problem;
    }
    return attachConflict('the server or its disks changed at the same time; try again');
  }

  /** Refuses a detachment while a job holds one of the volumes (a backup or restore of the server's disks). */
  private async checkDetachable(projectId: string, server: ServerRecord, volumeIds: string[]): Promise<void> {
    for (const volumeId of volumeIds) {
      const volume = await this.volumes.get(projectId, volumeId);
      if (volume?.lockJobId && volume.attachedServerId === server.serverId) {
        throw conflict('VolumeBackup.0012', `volume ${volumeId} of server ${server.serverId} is ${volume.status} (job ${volume.lockJobId}); try again when it has finished`);
      }
    }
  }

  private explainConflict(err: unknown, serverId: string): unknown {
    if (err instanceof ServerWriteConflictError) return attachConflict(`server ${serverId} or its disks changed at the same time; try again`);
    return err;
  }
}

function attachProblem(volume: VolumeRecord): ServiceError | undefined {
  if (volume.attachedServerId) return attachConflict(`volume ${volume.volumeId} is already attached to server ${volume.attachedServerId}`);
  if (volume.lockJobId) return conflict('VolumeBackup.0012', `volume ${volume.volumeId} is ${volume.status} (job ${volume.lockJobId}); try again when it has finished`);
  if (volume.status !== 'available') return attachConflict(`volume ${volume.volumeId} is ${volume.status}; only an available volume can be attached`);
  return undefined;
}

function checkServerName(name: string): void {
  checkText(name, 'OpenVBS.1401', { what: 'server name', min: 1, max: SERVER_NAME_MAX });
}

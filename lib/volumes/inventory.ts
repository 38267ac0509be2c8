// The local volume inventory: sparse raw images the service creates (managed) and existing image files
// or block devices registered by path, per project, in the volume store.
//
// Managed images live at `<dataDir>/volumes/<project>/<volumeId>.img`, mode 0600 in folders of mode
// 0700. Other instances, other projects and the user may keep files there too, so the inventory removes
// exactly one kind of file: the image of a managed volume it is deleting (or the image it has just
// created exclusively when the volume cannot be recorded).
//
// Registering a path is an administrator's act (an admin token) and only under the folders the operator
// lists in OPENVBS_VOLUME_ROOTS (none by default: registration is off). The path's real location (every
// symlink resolved) must lie inside one of them; block devices only with OPENVBS_ALLOW_BLOCK_DEVICES=1.
// Errors about a path outside the roots are all one message, so they tell nothing about what is there.
// The file's device and inode are recorded: every later open checks them (./file-identity.ts), and the
// volume store reserves the path across all projects.
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readFile, readlink, realpath, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PathTakenError } from '../catalog/volumes.ts';
import type { VolumeRecord, VolumeStore } from '../catalog/volumes.ts';
import type { KeyService } from '../engine/ports.ts';
import { ServiceError, badRequest, conflict, notFound } from '../service/errors.ts';
import { checkProjectId, isId } from '../service/ids.ts';
import { checkText } from '../service/validation.ts';
import { FileIdentityError, openNoFollow } from './file-identity.ts';
import type { FileIdentity } from './file-identity.ts';

/** Where existing images and devices may be registered from: the operator's settings. */
export interface PathRegistrationSettings {
  /** Absolute folders; empty: no path may be registered. */
  volumeRoots: readonly string[];
  allowBlockDevices: boolean;
}

/** OPENVBS_VOLUME_ROOTS (absolute folders separated by `:`) and OPENVBS_ALLOW_BLOCK_DEVICES (`1` allows). */
export function pathRegistrationFromEnv(env: NodeJS.ProcessEnv = process.env): PathRegistrationSettings {
  const volumeRoots = (env.OPENVBS_VOLUME_ROOTS ?? '').split(':').filter(Boolean);
  const relativeRoot = volumeRoots.find((root) => !isAbsolute(root));
  if (relativeRoot !== undefined) throw new Error(`OPENVBS_VOLUME_ROOTS: ${relativeRoot} is not an absolute path`);
  return { volumeRoots, allowBlockDevices: env.OPENVBS_ALLOW_BLOCK_DEVICES === '1' };
}

export interface VolumeInventoryDeps {
  volumes: VolumeStore;
  /** Resolves the customer key a volume names. */
  keys: KeyService;
  /** Managed images go to `<dataDir>/volumes/<project>/`. */
  dataDir: string;
  /** Whether existing paths may be registered at all (local mode: yes; on AWS: no). Default true. */
  allowPathRegistration?: boolean;
  /** Default: from the environment (pathRegistrationFromEnv). */
  pathRegistration?: PathRegistrationSettings;
  /** Restores backups into new volumes (createFromBackup); absent: that is refused. */
  backups?: BackupSource;
}

/** What a volume made from a backup needs of the backup service (lib/service/backups.ts). */
export interface BackupSource {
  /** A backup of the project, or one another project shares with it; 404 otherwise. */
  visible(projectId: string, backupId: string): Promise<{ record: { sizeBytes: number; status: string } }>;
  /** Starts the restore job into the volume (locks it `restoring` until the job ends). */
  restoreToNewVolume(projectId: string, backupId: string, volumeId: string): Promise<{ jobId: string }>;
}

export interface CreateVolumeFromBackupRequest {
  name: string;
  backupId: string;
  /** At least the backup's size (409 OpenVBS.1105 otherwise); default the backup's size. */
  sizeBytes?: number;
  kmsKeyId?: string;
}

export interface CreateVolumeRequest {
  name: string;
  sizeBytes: number;
  /** A customer key of the project (id, ARN or alias). */
  kmsKeyId?: string;
}

export interface RegisterVolumeRequest {
  name: string;
  path: string;
  kmsKeyId?: string;
  /** Needed for a block device whose size cannot be read from sysfs. */
  sizeBytes?: number;
}

const VOLUME_NAME_MAX = 255;
const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

const insideAny = (roots: readonly string[], path: string) => roots.some((root) => isInside(root, path));

/** The one answer for every path outside the roots, whatever is (or is not) there. */
const outsideRoots = (path: string) => badRequest('OpenVBS.1101', `path ${path} is not inside a folder volumes may be registered from (OPENVBS_VOLUME_ROOTS)`);

/** Size of the block device `rdev` (glibc's dev_t encoding) from sysfs (Linux), or undefined. */
async function blockDeviceSize(rdev: bigint): Promise<number | undefined> {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  try {
    const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
    return Number.isSafeInteger(sectors) && sectors > 0 ? sectors * 512 : undefined;
  } catch {
    return undefined;
  }
}

/** The real path of `path` if it lies inside one of `roots` (real paths). */
async function realPathInside(roots: readonly string[], path: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    // Whether it is missing is said only where it would lie inside a root.
    const location = await realLocationOfMissing(path);
    if (location !== undefined && insideAny(roots, location)) throw badRequest('OpenVBS.1101', `path ${path} does not exist or cannot be reached by the service`);
    throw outsideRoots(path);
  }
  if (!insideAny(roots, real)) throw outsideRoots(path);
  return real;
}

/**
 * Where a path that does not resolve would lie: the real path of its nearest existing ancestor; undefined
 * when an entry on the way exists but does not resolve (a dangling symlink: where it points is not told).
 */
async function realLocationOfMissing(path: string): Promise<string | undefined> {
  let entry = path;
  for (;;) {
    if (await lstat(entry).then(() => true, () => false)) return undefined;
    const parent = dirname(entry);
    if (parent === entry) return undefined;
    entry = parent;
    try {
      return await realpath(entry);
    } catch {
      // keep climbing
    }
  }
}

const byCreation = (a: VolumeRecord, b: VolumeRecord) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.volumeId < b.volumeId ? -1 : 1);

export class VolumeInventory {
  private readonly volumes: VolumeStore;
  private readonly keys: KeyService;
  private readonly managedArea: string;
  private readonly allowPathRegistration: boolean;
  private readonly pathRegistration: PathRegistrationSettings;
  private readonly backups: BackupSource | undefined;

  constructor(deps: VolumeInventoryDeps) {
    this.backups = deps.backups;
    this.volumes = deps.volumes;
    this.keys = deps.keys;
    this.managedArea = join(deps.dataDir, 'volumes');
    this.allowPathRegistration = deps.allowPathRegistration ?? true;
    this.pathRegistration = deps.pathRegistration ?? pathRegistrationFromEnv();
  }

  private imagePath(projectId: string, volumeId: string): string {
    return join(this.managedArea, projectId, `${volumeId}.img`);
  }

  /** Creates a sparse raw image of `sizeBytes` (mode 0600, in a folder of mode 0700). */
  async create(projectId: string, req: CreateVolumeRequest): Promise<VolumeRecord> {
    checkProjectId(projectId);
    checkVolumeName(req.name);
    if (!Number.isSafeInteger(req.sizeBytes) || req.sizeBytes < 1) throw badRequest('OpenVBS.1101', 'volume size must be a positive number of bytes');
    const kmsKeyId = await this.customerKey(projectId, req.kmsKeyId);
    const volumeId = randomUUID();
    const dir = join(this.managedArea, projectId);
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    // Folders made by an earlier version (or by hand) may be wider; the umask may have narrowed new ones only.
    await chmod(this.managedArea, PRIVATE_DIR);
    await chmod(dir, PRIVATE_DIR);
    const path = this.imagePath(projectId, volumeId);
    // 'wx': never open a file that is already there, so nothing of anyone else's is touched.
    const fh = await open(path, 'wx', PRIVATE_FILE);
    let fileIdentity: FileIdentity;
    try {
      await fh.truncate(req.sizeBytes);
      const st = await fh.stat({ bigint: true });
      fileIdentity = { dev: st.dev.toString(), ino: st.ino.toString() };
    } catch (err) {
      await fh.close();
      await unlink(path).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EFBIG' || code === 'ENOSPC' || code === 'EINVAL') throw badRequest('OpenVBS.1101', `cannot create an image of ${req.sizeBytes} bytes here (${code})`);
      throw err;
    }
    await fh.close();
    const at = new Date().toISOString();
    const record: VolumeRecord = {
      projectId,
      volumeId,
      name: req.name,
      sizeBytes: req.sizeBytes,
      path,
      managed: true,
      fileIdentity,
      ...(kmsKeyId ? { kmsKeyId } : {}),
      status: 'available',
      createdAt: at,
      updatedAt: at,
    };
    try {
      await this.volumes.create(record);
    } catch (err) {
      await unlink(path).catch(() => undefined);
      throw err;
    }
    return record;
  }

  /**
   * A new sparse image restored from a backup of the project or one shared with it (as EVS creates a disk
   * from `volume.backup_id`): the volume is `restoring` while the restore job runs, then `available`, or
   * `error` with the reason. When the job cannot start, the new volume is removed again.
   */
  async createFromBackup(projectId: string, req: CreateVolumeFromBackupRequest): Promise<{ volume: VolumeRecord; jobId: string }> {
    checkProjectId(projectId);
    if (!this.backups) throw badRequest('OpenVBS.1101', 'volumes cannot be created from backups here');
    const { record: backup } = await this.backups.visible(projectId, req.backupId);
    if (backup.status !== 'available') throw conflict('VolumeBackup.0089', `backup ${req.backupId} is ${backup.status}; only an available backup can be restored`);
    const sizeBytes = req.sizeBytes ?? backup.sizeBytes;
    // A conflict with the backup that is there (its size), not a malformed request: 409, as no schema can say it.
    if (sizeBytes < backup.sizeBytes) throw conflict('OpenVBS.1105', `a volume of ${sizeBytes} bytes is smaller than backup ${req.backupId} (${backup.sizeBytes} bytes)`);
    const volume = await this.create(projectId, { name: req.name, sizeBytes, ...(req.kmsKeyId !== undefined ? { kmsKeyId: req.kmsKeyId } : {}) });
    let jobId: string;
    try {
      ({ jobId } = await this.backups.restoreToNewVolume(projectId, req.backupId, volume.volumeId));
    } catch (err) {
      await this.delete(projectId, volume.volumeId).catch(() => undefined);
      throw err;
    }
    return { volume: (await this.volumes.get(projectId, volume.volumeId)) ?? volume, jobId };
  }

  /** Registers an existing image file or block device under a volume root (left in place when the volume is deleted). */
  async register(projectId: string, req: RegisterVolumeRequest): Promise<VolumeRecord> {
    checkProjectId(projectId);
    checkVolumeName(req.name);
    if (!this.allowPathRegistration) throw new ServiceError(403, 'OpenVBS.1102', 'registering existing paths is disabled; create a volume with a size instead');
    if (!this.pathRegistration.volumeRoots.length) {
      throw new ServiceError(403, 'OpenVBS.1102', 'registering existing paths is disabled: the operator has listed no folders for them (OPENVBS_VOLUME_ROOTS); create a volume with a size instead');
    }
    if (!isAbsolute(req.path)) throw badRequest('OpenVBS.1101', 'path must be absolute');
    const roots = (await Promise.all(this.pathRegistration.volumeRoots.map((root) => realpath(root).catch(() => undefined)))).filter((r) => r !== undefined);
    const real = await realPathInside(roots, req.path);
    // The managed area holds other volumes' (and projects') images: never registrable by path.
    const managedReal = await realpath(this.managedArea).catch(() => this.managedArea);
    if (isInside(managedReal, real)) throw badRequest('OpenVBS.1101', 'path lies inside the managed volume folder');
    const { sizeBytes, fileIdentity } = await this.inspect(real, roots, req);
    const kmsKeyId = await this.customerKey(projectId, req.kmsKeyId);
    const at = new Date().toISOString();
    const record: VolumeRecord = {
      projectId,
      volumeId: randomUUID(),
      name: req.name,
      sizeBytes,
      path: real,
      managed: false,
      fileIdentity,
      ...(kmsKeyId ? { kmsKeyId } : {}),
      status: 'available',
      createdAt: at,
      updatedAt: at,
    };
    try {
      await this.volumes.create(record);
    } catch (err) {
      if (err instanceof PathTakenError) throw new ServiceError(409, 'OpenVBS.1103', `path ${req.path} is already registered as a volume`);
      throw err;
    }
    return record;
  }

  /**
   * Size and identity of the file or block device at `real`. Its kind is checked before it is opened (a
   * device the operator has not allowed is never opened), then read again from one descriptor opened
   * without following symlinks, which must be the same file and still at `real` (a folder swapped for a
   * symlink since it was resolved would lead elsewhere).
   */
  private async inspect(real: string, roots: readonly string[], req: RegisterVolumeRequest): Promise<{ sizeBytes: number; fileIdentity: FileIdentity }> {
    const changed = () => badRequest('OpenVBS.1101', `path ${req.path} changed while it was being registered`);
    const seen = await lstat(real, { bigint: true }).catch(() => {
      throw changed();
    });
    if (seen.isBlockDevice() && !this.pathRegistration.allowBlockDevices) {
      throw badRequest('OpenVBS.1101', `path ${req.path} is a block device; the operator has not allowed block devices (OPENVBS_ALLOW_BLOCK_DEVICES=1)`);
    }
    if (!seen.isFile() && !seen.isBlockDevice()) throw badRequest('OpenVBS.1101', `path ${req.path} is neither a regular file nor a block device`);
    let opened: Awaited<ReturnType<typeof openNoFollow>>;
    try {
      opened = await openNoFollow(real, constants.O_RDONLY);
    } catch (err) {
      if (err instanceof FileIdentityError) throw changed();
      throw badRequest('OpenVBS.1101', `path ${req.path} is not readable by the service (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const { fh, stats, identity } = opened;
    try {
      const where = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => real);
      if (where !== real) throw insideAny(roots, where) ? changed() : outsideRoots(req.path);
      if (stats.dev !== seen.dev || stats.ino !== seen.ino) throw changed();
      const sizeBytes = stats.isFile() ? Number(stats.size) : ((await blockDeviceSize(stats.rdev)) ?? req.sizeBytes);
      if (sizeBytes === undefined) throw badRequest('OpenVBS.1101', `cannot read the size of block device ${req.path}; pass size_bytes`);
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1) throw badRequest('OpenVBS.1101', `path ${req.path} is empty`);
      return { sizeBytes, fileIdentity: identity };
    } finally {
      await fh.close();
    }
  }

  /** The project's volumes, oldest first. */
  async list(projectId: string): Promise<VolumeRecord[]> {
    checkProjectId(projectId);
    return (await this.volumes.list(projectId)).sort(byCreation);
  }

  async get(projectId: string, volumeId: string): Promise<VolumeRecord> {
    if (!isId(projectId) || !isId(volumeId)) throw notFound(`volume ${volumeId} not found`);
    const volume = await this.volumes.get(projectId, volumeId);
    if (!volume) throw notFound(`volume ${volumeId} not found`);
    return volume;
  }

  /** Removes the volume from the inventory, and its image when the service created it. Refused while a job holds it or a server has it. */
  async delete(projectId: string, volumeId: string): Promise<void> {
    const volume = await this.get(projectId, volumeId);
    const busy = () => conflict('VolumeBackup.0012', `volume ${volumeId} is ${volume.status} (job ${volume.lockJobId ?? 'unknown'}); try again when it has finished`);
    const attached = (serverId: string) => conflict('VolumeBackup.0012', `volume ${volumeId} is attached to server ${serverId}; detach it first`);
    if (volume.lockJobId) throw busy();
    if (volume.attachedServerId) throw attached(volume.attachedServerId);
    if (!(await this.volumes.delete(projectId, volumeId))) {
      const current = await this.volumes.get(projectId, volumeId);
      if (!current) throw notFound(`volume ${volumeId} not found`);
      if (current.attachedServerId && !current.lockJobId) throw attached(current.attachedServerId);
      throw busy();
    }
    // Only the managed image where this inventory puts it (a record from a home since moved keeps its file).
    if (volume.managed && volume.path === this.imagePath(projectId, volumeId)) {
      await unlink(volume.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }

  /** The ARN of the customer key `keyRef` names, which must be an enabled key of this project. */
  private async customerKey(projectId: string, keyRef: string | undefined): Promise<string | undefined> {
    if (keyRef === undefined) return undefined;
    const key = await this.keys.describeKey(keyRef);
    // Another project's key answers as an unknown one: nothing says it exists.
    if (!key || key.owner !== projectId) throw new ServiceError(404, 'OpenVBS.1104', `kms_key_id ${keyRef} is not a key of this project`);
    if (!key.enabled) throw conflict('OpenVBS.1104', `key ${keyRef} is disabled`);
    return key.arn;
  }
}

function checkVolumeName(name: string): void {
  checkText(name, 'OpenVBS.1101', { what: 'volume name', min: 1, max: VOLUME_NAME_MAX });
}

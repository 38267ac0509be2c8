// The local volume inventory: sparse raw images the service creates (managed) and existing image files
// or block devices registered by path, per project, in the volume store.
//
// Managed images live at `<dataDir>/volumes/<project>/<volumeId>.img`, mode 0600 in folders of mode
// 0700. Other instances, other projects and the user may keep files there too, so the inventory removes
// exactly one kind of file: the image of a managed volume it is deleting (or the image it has just
// created exclusively when the volume cannot be recorded).
import { constants } from 'node:fs';
import { access, chmod, mkdir, open, readFile, realpath, stat, unlink } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { VolumeRecord, VolumeStore } from '../catalog/volumes.ts';
import type { KeyService } from '../engine/ports.ts';
import { ServiceError, badRequest, notFound } from '../service/errors.ts';
import { checkProjectId, isId } from '../service/ids.ts';
import { checkText } from '../service/validation.ts';

export interface VolumeInventoryDeps {
  volumes: VolumeStore;
  /** Resolves the customer key a volume names. */
  keys: KeyService;
  /** Managed images go to `<dataDir>/volumes/<project>/`. */
  dataDir: string;
  /** Whether existing paths may be registered (local mode: yes; a shared deployment: no). Default true. */
  allowPathRegistration?: boolean;
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

const byCreation = (a: VolumeRecord, b: VolumeRecord) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.volumeId < b.volumeId ? -1 : 1);

export class VolumeInventory {
  private readonly volumes: VolumeStore;
  private readonly keys: KeyService;
  private readonly managedArea: string;
  private readonly allowPathRegistration: boolean;

  constructor(deps: VolumeInventoryDeps) {
    this.volumes = deps.volumes;
    this.keys = deps.keys;
    this.managedArea = join(deps.dataDir, 'volumes');
    this.allowPathRegistration = deps.allowPathRegistration ?? true;
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
    try {
      await fh.truncate(req.sizeBytes);
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

  /** Registers an existing image file or block device (left in place when the volume is deleted). */
  async register(projectId: string, req: RegisterVolumeRequest): Promise<VolumeRecord> {
    checkProjectId(projectId);
    checkVolumeName(req.name);
    if (!this.allowPathRegistration) throw badRequest('OpenVBS.1102', 'registering existing paths is disabled; create a volume with a size instead');
    if (!isAbsolute(req.path)) throw badRequest('OpenVBS.1101', 'path must be absolute');
    let real: string;
    try {
      real = await realpath(req.path);
    } catch {
      throw badRequest('OpenVBS.1101', `path ${req.path} does not exist`);
    }
    // The managed area holds other volumes' (and projects') images: never registrable by path.
    const managedReal = await realpath(this.managedArea).catch(() => this.managedArea);
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
    const kmsKeyId = await this.customerKey(projectId, req.kmsKeyId);
    const existing = await this.volumes.list(projectId);
    if (existing.some((v) => v.path === real || v.path === req.path)) throw new ServiceError(409, 'OpenVBS.1103', `path ${req.path} is already registered`);
    const at = new Date().toISOString();
    const record: VolumeRecord = {
      projectId,
      volumeId: randomUUID(),
      name: req.name,
      sizeBytes,
      path: real,
      managed: false,
      ...(kmsKeyId ? { kmsKeyId } : {}),
      status: 'available',
      createdAt: at,
      updatedAt: at,
    };
    await this.volumes.create(record);
    return record;
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

  /** Removes the volume from the inventory, and its image when the service created it. Refused while a job holds it. */
  async delete(projectId: string, volumeId: string): Promise<void> {
    const volume = await this.get(projectId, volumeId);
    const busy = () => badRequest('VolumeBackup.0012', `volume ${volumeId} is ${volume.status} (job ${volume.lockJobId ?? 'unknown'}); try again when it has finished`);
    if (volume.lockJobId) throw busy();
    if (!(await this.volumes.delete(projectId, volumeId))) {
      const current = await this.volumes.get(projectId, volumeId);
      if (!current) throw notFound(`volume ${volumeId} not found`);
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
    if (!key || key.owner !== projectId) throw badRequest('OpenVBS.1104', `kms_key_id ${keyRef} is not a key of this project`);
    if (!key.enabled) throw badRequest('OpenVBS.1104', `key ${keyRef} is disabled`);
    return key.arn;
  }
}

function checkVolumeName(name: string): void {
  checkText(name, 'OpenVBS.1101', { what: 'volume name', min: 1, max: VOLUME_NAME_MAX });
}

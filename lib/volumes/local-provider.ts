// The `file` VolumeProvider of local mode: volumes are the images and devices of the local inventory,
// servers are the inventory's servers (../catalog/servers.ts), and a group snapshot captures a server's
// disks at one instant into copies the backup then reads.
//
// How a group snapshot captures (each disk through the descriptor opened and checked once, O_NOFOLLOW,
// device and inode as registered; no path is opened again by name):
//   1. a copy-on-write clone (FICLONE, through copyFile's COPYFILE_FICLONE_FORCE on /proc/self/fd/N) where
//      the filesystem has one (XFS, btrfs; both files on it): instant, no data copied;
//   2. otherwise a sparse-aware copy (`cp --sparse=always` reading /dev/fd/3: holes stay holes).
// Whether the disks agree with each other depends on the server:
//   - stopped: nothing writes, so the capture is consistent as it is;
//   - running with freeze and thaw hooks: freeze, capture every disk, thaw (always, even when the capture
//     fails): consistent, and the writers are held only for the capture (`freezeMs`);
//   - running without hooks: captured one disk after the other while the server writes. Consistent only for
//     a one-disk server that was cloned (one clone is atomic); otherwise the snapshot says
//     crashConsistent false, and so does the backup made from it.
// Copies live in `<dataDir>/snapshots/<project>/<snapshotId>/<volumeId>.img` (folders 0700, files 0600)
// until releaseSnapshots removes them; they are never kept as the base of the next backup.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ServerRecord, ServerStore } from '../catalog/servers.ts';
import type { VolumeRecord, VolumeStore } from '../catalog/volumes.ts';
import { ServerNotFoundError } from '../engine/ports.ts';
import type { BlockReader, BlockWriter, GroupSnapshot, ReadSource, ServerInfo, VolumeInfo, VolumeProvider } from '../engine/ports.ts';
import { isId } from '../service/ids.ts';
import { openNoFollow, openVerified } from './file-identity.ts';
import { FileVolumeProvider, VolumeNotFoundError } from './file-provider.ts';
import type { FileVolumeProviderOptions } from './file-provider.ts';

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;
/** How long a hook may run when the server names no timeout. */
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 60;
/** Output of a failed hook or copy quoted in its error. */
const OUTPUT_TAIL = 2000;

/** A freeze or thaw hook failed (exit status, signal, timeout, or it could not start). */
export class ServerHookError extends Error {
  override name = 'ServerHookError';
}

/** The disks asked for are not the server's, or a disk could not be captured. */
export class GroupSnapshotError extends Error {
  override name = 'GroupSnapshotError';
}

export interface LocalVolumeProviderDeps {
  volumes: VolumeStore;
  servers: ServerStore;
  /** Snapshot copies go to `<dataDir>/snapshots/<project>/` (the same filesystem as the managed images: clones work there). */
  dataDir: string;
  /** Passed to the file providers that read the volumes and the copies (how holes are found). */
  files?: FileVolumeProviderOptions;
}

/** A disk opened for capture. */
interface OpenDisk {
  volumeId: string;
  snapshotId: string;
  fh: FileHandle;
  dir: string;
  target: string;
}

/** The volume record as the file provider needs it. */
function fileVolume(v: VolumeRecord) {
  return { path: v.path, kmsKeyId: v.kmsKeyId, sizeBytes: v.sizeBytes, ...(v.fileIdentity ? { fileIdentity: v.fileIdentity } : {}) };
}

const tail = (s: string) => (s.length > OUTPUT_TAIL ? `…${s.slice(-OUTPUT_TAIL)}` : s).trim();

/** Kills what is left of a process group we started (ESRCH: nothing left). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/**
 * Runs `argv` without a shell, in its own process group, with `timeoutMs`; resolves when it exits 0. Whatever
 * it leaves running in its group is killed when it ends: a hook must have done its work when it exits.
 */
function runCommand(what: string, argv: readonly string[], options: { timeoutMs: number; env?: NodeJS.ProcessEnv; stdio?: Array<number | 'ignore' | 'pipe'> }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      shell: false,
      detached: true,
      stdio: (options.stdio ?? ['ignore', 'pipe', 'pipe']) as never,
      ...(options.env ? { env: options.env } : {}),
    });
    let output = '';
    const collect = (d: Buffer) => {
      output = (output + d.toString()).slice(-OUTPUT_TAIL * 2);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new ServerHookError(`${what} could not start ${argv[0]}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(child.pid);
      const said = tail(output);
      if (timedOut) reject(new ServerHookError(`${what} did not finish within ${options.timeoutMs / 1000} s and was killed${said ? `: ${said}` : ''}`));
      else if (code === 0) resolve();
      else reject(new ServerHookError(`${what} ${code === null ? `ended by ${signal}` : `exited with status ${code}`}${said ? `: ${said}` : ''}`));
    });
  });
}

export class LocalVolumeProvider implements VolumeProvider {
  readonly keepsSnapshots = false;
  private readonly volumes: VolumeStore;
  private readonly servers: ServerStore;
  private readonly snapshotRoot: string;
  /** The live volumes, as the inventory records them. */
  private readonly live: FileVolumeProvider;
  /** Snapshot copies: `<snapshotId>/<volumeId>` names a copy. */
  private readonly copies: FileVolumeProvider;
  /** One group snapshot at a time per server in this process (a second freeze would be thawed by the first's thaw). */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(deps: LocalVolumeProviderDeps) {
    this.volumes = deps.volumes;
    this.servers = deps.servers;
    this.snapshotRoot = join(deps.dataDir, 'snapshots');
    this.live = new FileVolumeProvider(async (projectId, volumeId) => {
      const v = isId(projectId) && isId(volumeId) ? await this.volumes.get(projectId, volumeId) : undefined;
      return v && fileVolume(v);
    }, deps.files);
    this.copies = new FileVolumeProvider(async (projectId, key) => {
      const [snapshotId, volumeId] = key.split('/');
      return { path: this.copyPath(projectId, snapshotId!, volumeId!) };
    }, deps.files);
  }

  private copyPath(projectId: string, snapshotId: string, volumeId: string): string {
    return join(this.snapshotRoot, projectId, snapshotId, `${volumeId}.img`);
  }

  describe(projectId: string, volumeId: string): Promise<VolumeInfo> {
    return this.live.describe(projectId, volumeId);
  }

  async openReader(projectId: string, volumeId: string, source?: ReadSource): Promise<BlockReader> {
    const snapshotId = source?.snapshotId;
    if (snapshotId === undefined) return this.live.openReader(projectId, volumeId);
    const missing = () => new VolumeNotFoundError(`snapshot ${snapshotId} of volume ${volumeId} not found (released, or taken of another disk)`);
    if (!isId(projectId) || !isId(volumeId) || !isId(snapshotId)) throw missing();
    const exists = await lstat(this.copyPath(projectId, snapshotId, volumeId)).then((st) => st.isFile(), () => false);
    if (!exists) throw missing();
    // A copy holds the disk as it was; what changed since another snapshot is not tracked (changedRanges absent).
    return this.copies.openReader(projectId, `${snapshotId}/${volumeId}`);
  }

  openWriter(projectId: string, volumeId: string, minSizeBytes: number): Promise<BlockWriter> {
    return this.live.openWriter(projectId, volumeId, minSizeBytes);
  }

  async listServers(projectId: string): Promise<ServerInfo[]> {
    if (!isId(projectId)) return [];
    const servers = (await this.servers.list(projectId)).sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
    return Promise.all(servers.map((s) => this.serverInfo(s)));
  }

  async describeServer(projectId: string, serverId: string): Promise<ServerInfo> {
    return this.serverInfo(await this.server(projectId, serverId));
  }

  async setServerPower(projectId: string, serverId: string, on: boolean): Promise<void> {
    if (!isId(projectId) || !isId(serverId) || !(await this.servers.setStatus(projectId, serverId, on ? 'running' : 'stopped'))) {
      throw new ServerNotFoundError(`server ${serverId} not found`);
    }
  }

  async releaseSnapshots(projectId: string, snapshotIds: string[]): Promise<void> {
    if (!isId(projectId)) return;
    for (const snapshotId of snapshotIds) {
      if (isId(snapshotId)) await rm(join(this.snapshotRoot, projectId, snapshotId), { recursive: true, force: true });
    }
  }

  async snapshotDisks(projectId: string, serverId: string, volumeIds: string[]): Promise<GroupSnapshot> {
    const key = `${projectId}/${serverId}`;
    const before = this.busy.get(key) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(() => this.capture(projectId, serverId, volumeIds));
    const settled = run.catch(() => undefined);
    this.busy.set(key, settled);
    void settled.then(() => {
      if (this.busy.get(key) === settled) this.busy.delete(key);
    });
    return run;
  }

  private async server(projectId: string, serverId: string): Promise<ServerRecord> {
    const server = isId(projectId) && isId(serverId) ? await this.servers.get(projectId, serverId) : undefined;
    if (!server) throw new ServerNotFoundError(`server ${serverId} not found`);
    return server;
  }

  private async serverInfo(server: ServerRecord): Promise<ServerInfo> {
    let complete = true;
    const disks = await Promise.all(
      server.disks.map(async (d) => {
        const volume = await this.volumes.get(server.projectId, d.volumeId);
        if (!volume) complete = false;
        return {
          volumeId: d.volumeId,
          device: d.device,
          sizeBytes: volume?.sizeBytes ?? 0,
          ...(volume?.kmsKeyId ? { kmsKeyId: volume.kmsKeyId } : {}),
          bootable: d.bootable,
        };
      }),
    );
    return { serverId: server.serverId, name: server.name, status: complete ? server.status : 'error', disks };
  }

  private async capture(projectId: string, serverId: string, volumeIds: string[]): Promise<GroupSnapshot> {
    const server = await this.server(projectId, serverId);
    if (!volumeIds.length) throw new GroupSnapshotError('a group snapshot needs at least one disk');
    if (new Set(volumeIds).size !== volumeIds.length) throw new GroupSnapshotError('a group snapshot names a disk twice');
    for (const volumeId of volumeIds) {
      if (!server.disks.some((d) => d.volumeId === volumeId)) throw new GroupSnapshotError(`volume ${volumeId} is not a disk of server ${serverId}`);
    }
    // Everything that may be slow or fail is done before the freeze: open and check every disk, make the folders.
    const disks = await this.openDisks(projectId, volumeIds);
    try {
      const hooks = server.status === 'running' && server.freezeHook?.length && server.thawHook?.length ? { freeze: server.freezeHook, thaw: server.thawHook } : undefined;
      let cloned: boolean[];
      let freezeMs = 0;
      if (hooks) {
        const timeoutMs = (server.hookTimeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS) * 1000;
        const env = { ...process.env, OPENVBS_PROJECT_ID: projectId, OPENVBS_SERVER_ID: serverId, OPENVBS_SERVER_NAME: server.name };
        const started = performance.now();
        let failure: unknown;
        try {
          await runCommand(`the freeze hook of server ${serverId}`, hooks.freeze, { timeoutMs, env: { ...env, OPENVBS_HOOK: 'freeze' } });
          cloned = await this.captureAll(disks);
        } catch (err) {
          failure = err;
        }
        // Always thawed, whatever happened (a freeze hook that failed halfway may still have held something).
        try {
          await runCommand(`the thaw hook of server ${serverId}`, hooks.thaw, { timeoutMs, env: { ...env, OPENVBS_HOOK: 'thaw' } });
        } catch (err) {
          failure ??= err;
        }
        freezeMs = Math.round(performance.now() - started);
        if (failure !== undefined) throw failure;
      } else {
        cloned = await this.captureAll(disks);
      }
      const allCloned = cloned!.every(Boolean);
      const crashConsistent = server.status === 'stopped' || hooks !== undefined || (allCloned && disks.length === 1);
      const method = allCloned ? 'clone' : hooks ? 'freeze-copy' : 'copy';
      return { disks: disks.map((d) => ({ volumeId: d.volumeId, snapshotId: d.snapshotId })), crashConsistent, method, freezeMs };
    } catch (err) {
      await this.releaseSnapshots(projectId, disks.map((d) => d.snapshotId));
      throw err;
    } finally {
      await Promise.allSettled(disks.map((d) => d.fh.close()));
    }
  }

  /** Opens every disk read-only (the registered file itself, or nothing) and makes its snapshot folder. */
  private async openDisks(projectId: string, volumeIds: string[]): Promise<OpenDisk[]> {
    const projectDir = join(this.snapshotRoot, projectId);
    await mkdir(projectDir, { recursive: true, mode: PRIVATE_DIR });
    await chmod(this.snapshotRoot, PRIVATE_DIR);
    await chmod(projectDir, PRIVATE_DIR);
    const disks: OpenDisk[] = [];
    try {
      for (const volumeId of volumeIds) {
        const volume = await this.volumes.get(projectId, volumeId);
        if (!volume) throw new VolumeNotFoundError(`volume ${volumeId} not found`);
        const fh = volume.fileIdentity ? await openVerified(volume.path, constants.O_RDONLY, volume.fileIdentity) : (await openNoFollow(volume.path, constants.O_RDONLY)).fh;
        const snapshotId = randomUUID();
        const dir = join(projectDir, snapshotId);
        disks.push({ volumeId, snapshotId, fh, dir, target: join(dir, `${volumeId}.img`) });
        await mkdir(dir, { mode: PRIVATE_DIR });
      }
      return disks;
    } catch (err) {
      await Promise.allSettled(disks.map((d) => d.fh.close()));
      await this.releaseSnapshots(projectId, disks.map((d) => d.snapshotId));
      throw err;
    }
  }

  /** Captures every disk, one after the other; for each, whether it was cloned. */
  private async captureAll(disks: OpenDisk[]): Promise<boolean[]> {
    const cloned: boolean[] = [];
    for (const disk of disks) cloned.push(await this.captureOne(disk));
    return cloned;
  }

  private async captureOne(disk: OpenDisk): Promise<boolean> {
    try {
      // FICLONE from the checked descriptor; fails at once where the filesystem cannot (and leaves no file).
      await copyFile(`/proc/self/fd/${disk.fh.fd}`, disk.target, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
      await chmod(disk.target, PRIVATE_FILE);
      return true;
    } catch {
      // no clone here: copy
    }
    try {
      await rm(disk.target, { force: true });
      // Created here first (0600, exclusive), then filled by cp through the descriptor: holes stay holes.
      await (await open(disk.target, 'wx', PRIVATE_FILE)).close();
      await runCommand(`copying volume ${disk.volumeId}`, ['cp', '--sparse=always', '--reflink=never', '/dev/fd/3', disk.target], {
        timeoutMs: 24 * 3600 * 1000,
        stdio: ['ignore', 'pipe', 'pipe', disk.fh.fd],
      });
    } catch (err) {
      throw new GroupSnapshotError(`cannot capture volume ${disk.volumeId}: ${(err as Error).message}`);
    }
    return false;
  }
}

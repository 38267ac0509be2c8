// Group snapshots of a local server whose disks are being written, at the provider: a writer child
// process stamps one increasing sequence number on each of three disks in turn; with freeze and thaw hooks
// that stop and continue the writer, the three captured copies agree (no disk ahead of another by more
// than the one write in flight), and the run prints how long the writer was held against the whole
// snapshot. Without hooks the snapshot says it is not crash-consistent; a stopped server's is; the thaw
// hook runs whatever fails after the freeze. Real SQLite catalog, real image files, real processes.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCatalogStores } from '../../lib/catalog/stores.ts';
import { LocalKeyService } from '../../lib/embedded/local-key-service.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';
import type { GroupSnapshot } from '../../lib/engine/ports.ts';
import { VolumeInventory } from '../../lib/volumes/inventory.ts';
import { LocalVolumeProvider, ServerHookError } from '../../lib/volumes/local-provider.ts';
import { ServerInventory } from '../../lib/volumes/servers.ts';
import { continueHook, newestStamp, startWriter, stopHook, stopWriters } from '../support/stamp-writer.ts';

const MIB = 1024 * 1024;
const DISK_BYTES = 64 * MIB;
let dir: string;
let table: SqliteTable;
let volumes: VolumeInventory;
let servers: ServerInventory;
let provider: LocalVolumeProvider;
const projectId = randomBytes(16).toString('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'openvbs-server-snapshot-'));
  table = new SqliteTable(join(dir, 'catalog.db'));
  const stores = createCatalogStores(table);
  const dataDir = join(dir, 'data');
  volumes = new VolumeInventory({ volumes: stores.volumes, keys: new LocalKeyService(join(dir, 'keys')), dataDir, allowPathRegistration: false });
  servers = new ServerInventory({ servers: stores.servers, volumes: stores.volumes, allowHooks: true });
  provider = new LocalVolumeProvider({ volumes: stores.volumes, servers: stores.servers, dataDir });
});

// Each writer runs in its own process group: the group goes, whatever the test did.
afterEach(stopWriters);

afterAll(async () => {
  table?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A server with three disks full of non-zero data (so each copy takes a while). */
async function serverWithDisks(status: 'running' | 'stopped' = 'running') {
  const paths: string[] = [];
  const ids: string[] = [];
  const fill = Buffer.alloc(MIB, 0xa5);
  for (let i = 0; i < 3; i++) {
    const v = await volumes.create(projectId, { name: `disk-${i}`, sizeBytes: DISK_BYTES });
    const fh = await open(v.path, 'r+');
    for (let at = 0; at < DISK_BYTES; at += MIB) await fh.write(fill, 0, MIB, at);
    // On disk, as a running machine's images mostly are (a clone first writes back what is dirty).
    await fh.datasync();
    await fh.close();
    paths.push(v.path);
    ids.push(v.volumeId);
  }
  const server = await servers.create(projectId, { name: `db-${randomBytes(3).toString('hex')}`, status, disks: ids.map((volumeId) => ({ volumeId })) });
  return { serverId: server.serverId, paths, ids };
}

async function stampsOf(group: GroupSnapshot): Promise<number[]> {
  const stamps: number[] = [];
  for (const d of group.disks) {
    const copy = join(dir, 'data', 'snapshots', projectId, d.snapshotId, `${d.volumeId}.img`);
    stamps.push(await newestStamp(copy));
  }
  return stamps;
}

describe('group snapshot of a server being written', () => {
  it('with freeze and thaw hooks: every disk captured at one instant, the writer held only for the capture', async () => {
    const { serverId, paths, ids } = await serverWithDisks();
    const writer = await startWriter(paths);
    await servers.setHooks(projectId, serverId, { freeze: stopHook(writer.pid!), thaw: continueHook(writer.pid!) });

    const started = performance.now();
    const group = await provider.snapshotDisks(projectId, serverId, ids);
    const totalMs = performance.now() - started;

    expect(group.crashConsistent).toBe(true);
    // ext4 and tmpfs have no clone: a copy under the freeze (a reflink filesystem would say 'clone')
    expect(['freeze-copy', 'clone']).toContain(group.method);
    const stamps = await stampsOf(group);
    // The writer stamps disk 0, 1, 2 in turn: held between two writes, the disks read n, n, n or n, n, n-1 or n, n-1, n-1.
    expect(stamps[0]).toBeGreaterThan(1000);
    expect(stamps[0]! - stamps[2]!).toBeGreaterThanOrEqual(0);
    expect(stamps[0]! - stamps[2]!).toBeLessThanOrEqual(1);
    expect(stamps[0]!).toBeGreaterThanOrEqual(stamps[1]!);
    expect(stamps[1]!).toBeGreaterThanOrEqual(stamps[2]!);

    // The writer went on after the thaw.
    const after = await newestStamp(paths[0]!);
    await new Promise((r) => setTimeout(r, 50));
    expect(await newestStamp(paths[0]!)).toBeGreaterThan(after);

    console.log(
      `group snapshot of 3 x ${DISK_BYTES / MIB} MiB (${group.method}): writer held ${group.freezeMs} ms of ${totalMs.toFixed(0)} ms in all; stamps ${stamps.join(', ')}`,
    );
    await provider.releaseSnapshots(projectId, group.disks.map((d) => d.snapshotId));
  });

  it('without hooks, a running server is captured disk after disk: not crash-consistent, and says so', async () => {
    const { serverId, paths, ids } = await serverWithDisks();
    await startWriter(paths);
    const group = await provider.snapshotDisks(projectId, serverId, ids);
    expect(group.crashConsistent).toBe(false);
    // disk after disk, whether copied or (on XFS, btrfs) cloned: three clones are three instants
    expect(['copy', 'clone']).toContain(group.method);
    expect(group.freezeMs).toBe(0);
    const stamps = await stampsOf(group);
    console.log(`without hooks (${group.method}): stamps ${stamps.join(', ')} (disks captured apart)`);
    await provider.releaseSnapshots(projectId, group.disks.map((d) => d.snapshotId));
  });

  it('a stopped server is consistent without hooks, and its hooks are not run', async () => {
    const { serverId, ids } = await serverWithDisks('stopped');
    const marker = join(dir, `stopped-${randomBytes(3).toString('hex')}`);
    await servers.setHooks(projectId, serverId, { freeze: ['/bin/sh', '-c', 'echo freeze >> "$1"', 'freeze', marker], thaw: ['/bin/sh', '-c', 'echo thaw >> "$1"', 'thaw', marker] });
    const group = await provider.snapshotDisks(projectId, serverId, ids);
    expect(group).toMatchObject({ crashConsistent: true, freezeMs: 0 });
    expect(['copy', 'clone']).toContain(group.method);
    await expect(stat(marker)).rejects.toThrow(/ENOENT/);
    await provider.releaseSnapshots(projectId, group.disks.map((d) => d.snapshotId));
  });
});

describe('hooks that fail', () => {
  const snapshotsLeft = async () => readdir(join(dir, 'data', 'snapshots', projectId)).catch((): string[] => []);

  it('thaws after a capture that failed under the freeze, and leaves no copy behind', async () => {
    const { serverId, ids } = await serverWithDisks();
    const marker = join(dir, `thaw-${randomBytes(3).toString('hex')}`);
    const before = await snapshotsLeft();
    // The freeze hook removes the snapshot folders the provider has just made: the copy into them fails.
    const snapshots = join(dir, 'data', 'snapshots', projectId);
    await servers.setHooks(projectId, serverId, {
      freeze: ['/bin/sh', '-c', 'for d in "$1"/*/; do rm -rf "$d"; done', 'freeze', snapshots],
      thaw: ['/bin/sh', '-c', 'echo thawed >> "$1"', 'thaw', marker],
    });
    await expect(provider.snapshotDisks(projectId, serverId, ids)).rejects.toThrow(/cannot capture volume/);
    expect(await readFile(marker, 'utf8')).toBe('thawed\n');
    expect((await snapshotsLeft()).filter((s) => !before.includes(s))).toEqual([]);
  });

  it('thaws when the freeze hook fails or times out, and names the hook', async () => {
    const { serverId, ids } = await serverWithDisks();
    const marker = join(dir, `thaw-${randomBytes(3).toString('hex')}`);
    const thaw = ['/bin/sh', '-c', 'echo thawed >> "$1"', 'thaw', marker];
    await servers.setHooks(projectId, serverId, { freeze: ['/bin/sh', '-c', 'echo guest agent not answering >&2; exit 3'], thaw });
    const failed = await provider.snapshotDisks(projectId, serverId, ids).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ServerHookError);
    expect((failed as Error).message).toBe(`the freeze hook of server ${serverId} exited with status 3: guest agent not answering`);
    expect(await readFile(marker, 'utf8')).toBe('thawed\n');

    await servers.setHooks(projectId, serverId, { freeze: ['/bin/sleep', '30'], thaw, timeoutSeconds: 1 });
    await expect(provider.snapshotDisks(projectId, serverId, ids)).rejects.toThrow(`the freeze hook of server ${serverId} did not finish within 1 s and was killed`);
    expect(await readFile(marker, 'utf8')).toBe('thawed\nthawed\n');

    await servers.setHooks(projectId, serverId, { freeze: ['/no/such/program'], thaw });
    await expect(provider.snapshotDisks(projectId, serverId, ids)).rejects.toThrow(/could not start \/no\/such\/program/);
  });

  it('fails when the thaw hook fails (the server may still be held), and keeps no copy', async () => {
    const { serverId, ids } = await serverWithDisks();
    const before = await snapshotsLeft();
    await servers.setHooks(projectId, serverId, { freeze: ['/bin/true'], thaw: ['/bin/false'] });
    await expect(provider.snapshotDisks(projectId, serverId, ids)).rejects.toThrow(`the thaw hook of server ${serverId} exited with status 1`);
    expect((await snapshotsLeft()).filter((s) => !before.includes(s))).toEqual([]);
  });
});

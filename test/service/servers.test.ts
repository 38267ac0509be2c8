// The local server inventory's rules on the real stores (SQLite in memory): a volume on at most one server
// even under concurrent attachments, the disk limit, devices, disks a job holds, and hook validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SERVER_DISKS } from '../../lib/catalog/servers.ts';
import { ServerInventory } from '../../lib/volumes/servers.ts';
import { createServiceEnv, expectServiceError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;
let servers: ServerInventory;
const p = projectId();

beforeAll(async () => {
  env = await createServiceEnv();
  servers = new ServerInventory({ servers: env.stores.servers, volumes: env.stores.volumes, allowHooks: true });
});
afterAll(async () => env?.close());

const volume = async (name = 'disk') => (await env.services.volumes.create(p, { name, sizeBytes: 4096 })).volumeId;

describe('server inventory', () => {
  it('attaches a volume to exactly one of two servers asking at once', async () => {
    const v = await volume();
    const [a, b] = [await servers.create(p, { name: 'a' }), await servers.create(p, { name: 'b' })];
    const results = await Promise.allSettled([servers.attach(p, a.serverId, { volumeId: v }), servers.attach(p, b.serverId, { volumeId: v })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const volumeRecord = await env.services.volumes.get(p, v);
    expect(volumeRecord.status).toBe('in-use');
    const owner = [a, b].find((s) => s.serverId === volumeRecord.attachedServerId)!;
    const other = owner === a ? b : a;
    expect((await servers.get(p, owner.serverId)).disks.map((d) => d.volumeId)).toEqual([v]);
    expect((await servers.get(p, other.serverId)).disks).toEqual([]);
  });

  it('gives concurrent attachments to one server distinct devices', async () => {
    const s = await servers.create(p, { name: 'many' });
    const vols = await Promise.all([volume(), volume(), volume(), volume()]);
    await Promise.all(vols.map((volumeId) => servers.attach(p, s.serverId, { volumeId })));
    const disks = (await servers.get(p, s.serverId)).disks;
    expect(disks.map((d) => d.volumeId).sort()).toEqual([...vols].sort());
    expect(disks.map((d) => d.device).sort()).toEqual(['/dev/vda', '/dev/vdb', '/dev/vdc', '/dev/vdd']);
    expect(disks.filter((d) => d.bootable)).toHaveLength(1);
  });

  it(`holds at most ${MAX_SERVER_DISKS} disks, and deletes a full server in one transaction`, async () => {
    const vols: string[] = [];
    for (let i = 0; i < MAX_SERVER_DISKS + 1; i++) vols.push(await volume(`d${i}`));
    await expectServiceError(servers.create(p, { name: 'too-many', disks: vols.map((volumeId) => ({ volumeId })) }), 400, 'OpenVBS.1401');
    const full = await servers.create(p, { name: 'full', disks: vols.slice(0, MAX_SERVER_DISKS).map((volumeId) => ({ volumeId })) });
    expect(full.disks.at(-1)!.device).toBe('/dev/vdx');
    await expectServiceError(servers.attach(p, full.serverId, { volumeId: vols.at(-1)! }), 409, 'OpenVBS.1402');
    await servers.delete(p, full.serverId);
    for (const v of vols) expect((await env.services.volumes.get(p, v)).status).toBe('available');
  });

  it('refuses a taken device, a bad device name, an unknown or unavailable volume', async () => {
    const [v1, v2] = [await volume(), await volume()];
    const s = await servers.create(p, { name: 'dev', disks: [{ volumeId: v1, device: '/dev/xvdf' }] });
    await expectServiceError(servers.attach(p, s.serverId, { volumeId: v2, device: '/dev/xvdf' }), 409, 'OpenVBS.1402');
    await expectServiceError(servers.attach(p, s.serverId, { volumeId: v2, device: '/etc/passwd' }), 400, 'OpenVBS.1401');
    await expectServiceError(servers.attach(p, s.serverId, { volumeId: 'no-such-volume' }), 404, 'OpenVBS.0404');
    await expectServiceError(servers.create(p, { name: 'twice', disks: [{ volumeId: v2 }, { volumeId: v2 }] }), 409, 'OpenVBS.1402');
    // a volume a job holds, and one in error
    await env.stores.volumes.lock(p, v2, 'job-1', 'backing-up', ['available']);
    await expectServiceError(servers.attach(p, s.serverId, { volumeId: v2 }), 409, 'VolumeBackup.0012');
    await env.stores.volumes.release(p, v2, 'job-1', 'error', 'restore failed');
    const err = await expectServiceError(servers.attach(p, s.serverId, { volumeId: v2 }), 409, 'OpenVBS.1402');
    expect(err.message).toBe(`volume ${v2} is error; only an available volume can be attached`);
  });

  it('refuses to detach a disk or delete a server while a job holds a disk', async () => {
    const v = await volume();
    const s = await servers.create(p, { name: 'busy', disks: [{ volumeId: v }] });
    await env.stores.volumes.lock(p, v, 'job-2', 'backing-up', ['available', 'in-use']);
    await expectServiceError(servers.detach(p, s.serverId, v), 409, 'VolumeBackup.0012');
    await expectServiceError(servers.delete(p, s.serverId), 409, 'VolumeBackup.0012');
    await env.stores.volumes.release(p, v, 'job-2');
    expect((await env.services.volumes.get(p, v)).status).toBe('in-use');
    await servers.detach(p, s.serverId, v);
    expect((await env.services.volumes.get(p, v)).status).toBe('available');
    await servers.delete(p, s.serverId);
    await expectServiceError(servers.get(p, s.serverId), 404, 'OpenVBS.0404');
  });

  it('validates names, statuses and hooks', async () => {
    await expectServiceError(servers.create(p, { name: '' }), 400, 'OpenVBS.1401');
    await expectServiceError(servers.create(p, { name: 'x', status: 'paused' as 'running' }), 400, 'OpenVBS.1401');
    const s = await servers.create(p, { name: 'hooks' });
    expect(s.status).toBe('running');
    await expectServiceError(servers.setHooks(p, s.serverId, { freeze: [], thaw: ['/bin/true'] }), 400, 'OpenVBS.1401');
    await expectServiceError(servers.setHooks(p, s.serverId, { freeze: ['/bin/true'], thaw: ['true'] }), 400, 'OpenVBS.1401');
    await expectServiceError(servers.setHooks(p, s.serverId, { freeze: ['/bin/true', 'a\0b'], thaw: ['/bin/true'] }), 400, 'OpenVBS.1401');
    await expectServiceError(servers.setHooks(p, s.serverId, { freeze: ['/bin/true'], thaw: ['/bin/true'], timeoutSeconds: 0 }), 400, 'OpenVBS.1401');
    const set = await servers.setHooks(p, s.serverId, { freeze: ['/bin/true'], thaw: ['/bin/true'] });
    expect(set).toMatchObject({ freezeHook: ['/bin/true'], thawHook: ['/bin/true'] });
    expect(set.hookTimeoutSeconds).toBeUndefined();
    // hooks are off unless the operator allows them
    const strict = new ServerInventory({ servers: env.stores.servers, volumes: env.stores.volumes, allowHooks: false });
    await expectServiceError(strict.setHooks(p, s.serverId, { freeze: ['/bin/true'], thaw: ['/bin/true'] }), 403, 'OpenVBS.1403');
  });
});

// The CSBS v1 routes through the REST API app (app.request), on the services over a real SQLite catalog and
// the local provider over the real server inventory; workflows are only recorded, so a test that needs a
// finished server backup commits it as the workflow's last step would (disk backups written, one transition).
// Also the job API's view of a server job: its disks' jobs in sub_jobs, their progress summed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';
import { appCaller } from '../support/app-call.ts';

let env: ServiceEnv;
let app: ApiApp;
const p = projectId();
let admin: string;

const MiB = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const VBS_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;
const providers = `/providers/${CSBS_PROVIDER_ID}`;

beforeAll(async () => {
  env = await createServiceEnv();
  app = createApiApp(env.services, { logger: { error: () => {} }, baseUrl: 'https://vbs.example' });
  admin = (await env.services.tokens.create(p, { scope: 'admin' })).token;
});
afterAll(async () => env?.close());

const request = appCaller(() => app, () => admin);
const call = (method: string, path: string, body?: unknown) => request(method, `/v1/${p}${path}`, body);

/** A server of the local inventory with disks of these sizes (MiB), the first bootable. */
async function server(name: string, sizesMiB: number[], status: 'running' | 'stopped' = 'running') {
  const disks = [];
  for (const [i, size] of sizesMiB.entries()) disks.push({ volumeId: (await env.services.volumes.create(p, { name: `${name}-d${i}`, sizeBytes: size * MiB })).volumeId });
  return env.services.servers.create(p, { name, status, disks });
}

const protect = (serverId: string, protectBody: Record<string, unknown> = {}) => call('POST', `${providers}/resources/${serverId}/action`, { protect: protectBody });

/** What the server-backup workflow does when every disk is done: disk backups written, all available at once, jobs SUCCESS. */
async function commit(checkpointId: string, options: { seconds?: number } = {}) {
  const c = (await env.stores.checkpoints.get(p, checkpointId))!;
  const begin = new Date(Date.parse(c.createdAt)).toISOString();
  const end = new Date(Date.parse(c.createdAt) + (options.seconds ?? 2) * 1000).toISOString();
  await env.stores.checkpoints.update(p, checkpointId, {
    snapshot: { crashConsistent: true, method: 'clone', freezeMs: 0 },
    disks: c.disks.map((d, i) => ({ ...d, snapshotId: `snap-${i}-${checkpointId.slice(0, 8)}` })),
  });
  for (const d of c.disks) {
    const base = backupRecord(p, { backupId: d.backupId, volumeId: d.volumeId, name: `${c.name}_${d.device.split('/').pop()}`, status: 'creating', sizeBytes: d.sizeBytes });
    // half of the data stored: a 50 % saving
    await env.stores.backups.createBackup({ ...base, stats: { ...base.stats!, logicalBytes: d.sizeBytes, storedBytes: d.sizeBytes / 2 }, extra: { ...base.extra, ST: 1, checkpointId } });
    await env.stores.jobs.update(p, d.jobId, { status: 'SUCCESS', beginTime: begin, endTime: end, bytesDone: d.sizeBytes, bytesTotal: d.sizeBytes });
  }
  await env.stores.checkpoints.transition(p, checkpointId, { from: ['protecting'], to: 'available', backupFrom: ['creating'], backupTo: 'available', patch: { finishedAt: end } });
  await env.stores.jobs.update(p, c.jobId, { status: 'SUCCESS', beginTime: begin, endTime: end });
}

/** A server with a committed server backup: its item. */
async function backedUp(name: string, sizesMiB: number[], status: 'running' | 'stopped' = 'stopped') {
  const s = await server(name, sizesMiB, status);
  const r = await protect(s.serverId, { backup_name: name });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  await commit(r.body.checkpoint.id);
  const item = (await call('GET', `/checkpoint_items?checkpoint_id=${r.body.checkpoint.id}`)).body.checkpoint_items[0];
  return { server: s, item };
}

describe('CSBS API', () => {
  it('protects a server: 200 with the checkpoint, protecting, one job with a sub-job per disk', async () => {
    const s = await server('web', [2, 1]);
    const r = await protect(s.serverId, { backup_name: 'nightly', description: 'before upgrade', resource_type: 'OS::Nova::Server', tags: [{ key: 'env', value: 'prod' }] });
    expect(r.status).toBe(200);
    const cp = r.body.checkpoint;
    expect(cp).toMatchObject({
      status: 'protecting',
      project_id: p,
      resource_graph: null,
      protection_plan: { name: `server protect plan for ${s.serverId}`, resources: [{ id: s.serverId, type: 'OS::Nova::Server', name: 'web', extra_info: '{}' }] },
    });
    expect(cp.id).toMatch(UUID);
    expect(cp.created_at).toMatch(VBS_TIME);
    expect(env.workflows.last()).toMatchObject({ workflow: 'server-backup', input: { backupId: cp.id, serverId: s.serverId } });

    const job = await call('GET', `/jobs/${cp.extra_info.job_id}`);
    expect(job.status).toBe(200);
    expect(job.body).toMatchObject({ job_type: 'bksCreateServerBackup', status: 'INIT', entities: { checkpoint_id: cp.id, server_id: s.serverId } });
    expect(job.body.sub_jobs).toHaveLength(2);
    expect(job.body.sub_jobs.map((j: { entities: { volume_id: string } }) => j.entities.volume_id).sort()).toEqual(s.disks.map((d) => d.volumeId).sort());
    for (const sub of job.body.sub_jobs) expect(sub).toMatchObject({ job_type: 'bksCreateBackup', status: 'INIT', sub_jobs: [], progress: 0 });

    // the disks report progress: the server job shows their sum
    const [a, b] = job.body.sub_jobs as Array<{ job_id: string }>;
    const order = (job.body.sub_jobs as Array<{ job_id: string }>).map((j) => j.job_id);
    await env.stores.jobs.update(p, a!.job_id, { status: 'RUNNING', bytesTotal: 2 * MiB, bytesDone: 2 * MiB });
    await env.stores.jobs.update(p, b!.job_id, { status: 'RUNNING', bytesTotal: 2 * MiB, bytesDone: 0 });
    const running = (await call('GET', `/jobs/${cp.extra_info.job_id}`)).body;
    expect(running).toMatchObject({ bytes_done: 2 * MiB, bytes_total: 4 * MiB, progress: 50 });
    expect(running.sub_jobs.map((j: { job_id: string }) => j.job_id)).toEqual(order);
    expect(running.sub_jobs.map((j: { progress: number }) => j.progress)).toEqual([99, 0]);

    // the item while protecting
    const item = (await call('GET', `/checkpoint_items?checkpoint_id=${cp.id}`)).body.checkpoint_items[0];
    expect(item).toMatchObject({ checkpoint_id: cp.id, name: 'nightly', description: 'before upgrade', status: 'protecting', tags: [{ key: 'env', value: 'prod' }] });
    expect(item.extend_info).toMatchObject({ progress: 50, 'os-openvbs:crash_consistent': null, 'os-openvbs:job_id': cp.extra_info.job_id, finished_at: null });
    expect(item.extend_info.volume_backups.map((v: { status: string }) => v.status)).toEqual(['creating', 'creating']);

    // a sub-job is not cancelled alone; the server job is
    const sub = await call('POST', `/jobs/${a!.job_id}/cancel`);
    expect(sub.status).toBe(409);
    expect(sub.body.error.code).toBe('OpenVBS.1005');
    expect(sub.body.error.message).toContain(`cancel that job`);
    expect((await call('POST', `/jobs/${cp.extra_info.job_id}/cancel`)).status).toBe(200);
    expect(env.workflows.stops.at(-1)!.executionArn).toContain(cp.extra_info.job_id);
  });

  it('shows a finished item with every field CSBS clients read, typed as they decode it', async () => {
    const { server: s, item } = await backedUp('db', [2, 1]);
    expect(Object.keys(item).sort()).toEqual(['backup_data', 'checkpoint_id', 'created_at', 'description', 'extend_info', 'id', 'name', 'resource_id', 'resource_type', 'status', 'tags', 'updated_at'].sort());
    expect(item).toMatchObject({ name: 'db', resource_id: s.serverId, resource_type: 'OS::Nova::Server', status: 'available', description: null, backup_data: { disk: 1, ram: 0, vcpus: 0 } });
    expect(item.id).toMatch(UUID);
    expect(item.updated_at).toMatch(VBS_TIME);
    const info = item.extend_info;
    expect(info).toMatchObject({
      auto_trigger: false,
      progress: 100,
      incremental: false,
      resource_az: 'test-az',
      resource_name: 'db',
      resource_type: 'OS::Nova::Server',
      size: 3, // MB of data covered (2 + 1)
      space_saving_ratio: 50,
      average_speed: 2, // 3 MB in 2 s, rounded
      fail_code: {},
      fail_reason: '',
      supported_restore_mode: 'backup',
      'os-openvbs:crash_consistent': true,
      'os-openvbs:snapshot_method': 'clone',
      'os-openvbs:freeze_ms': 0,
    });
    expect(info.finished_at).toMatch(VBS_TIME);
    expect(info.volume_backups).toHaveLength(2);
    expect(info.volume_backups[0]).toEqual({
      id: expect.stringMatching(UUID),
      name: 'db_vda',
      status: 'available',
      bootable: true,
      incremental: false,
      snapshot_id: expect.stringMatching(/^snap-0-/),
      source_volume_id: s.disks[0]!.volumeId,
      source_volume_size: 1,
      size: 2,
      space_saving_ratio: 50,
      average_speed: 1,
      image_type: 'backup',
      device: '/dev/vda',
    });
    // each disk backup is in the VBS list, as a server backup's
    const vbs = await app.request(`/v2/${p}/backups/${info.volume_backups[1].id}`, { headers: { 'X-Auth-Token': admin } });
    expect(vbs.status).toBe(200);
    // shown by id
    const shown = await call('GET', `/checkpoint_items/${item.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body.checkpoint_item).toEqual(item);
    const missing = await call('GET', '/checkpoint_items/0b7a4a8e-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('OpenVBS.0404');
  });

  it('lists with filters, sorts, pages with a next link and counts', async () => {
    const s = await server('pager', [1]);
    const ids: string[] = [];
    for (const name of ['pg_a', 'pg_b', 'pg_c']) {
      const r = await protect(s.serverId, { backup_name: name });
      expect(r.status).toBe(200);
      await commit(r.body.checkpoint.id);
      ids.push(r.body.checkpoint.id);
    }
    const byServer = `resource_id=${s.serverId}`;
    const all = (await call('GET', `/checkpoint_items?${byServer}`)).body;
    expect(all.checkpoint_items.map((i: { name: string }) => i.name)).toEqual(['pg_c', 'pg_b', 'pg_a']);
    expect(all.checkpoint_items_links).toBeUndefined();
    expect((await call('GET', `/checkpoint_items?${byServer}&sort=name:asc`)).body.checkpoint_items.map((i: { name: string }) => i.name)).toEqual(['pg_a', 'pg_b', 'pg_c']);

    const first = (await call('GET', `/checkpoint_items?${byServer}&limit=2&sort=name:asc`)).body;
    expect(first.checkpoint_items.map((i: { name: string }) => i.name)).toEqual(['pg_a', 'pg_b']);
    expect(first.checkpoint_items_links).toHaveLength(1);
    const next = new URL(first.checkpoint_items_links[0].href);
    expect(first.checkpoint_items_links[0].rel).toBe('next');
    expect(next.origin + next.pathname).toBe(`https://vbs.example/v1/${p}/checkpoint_items`);
    expect(next.searchParams.get('marker')).toBe(first.checkpoint_items[1].id);
    const second = (await call('GET', `/checkpoint_items?${next.searchParams}`)).body;
    expect(second.checkpoint_items.map((i: { name: string }) => i.name)).toEqual(['pg_c']);
    expect(second.checkpoint_items_links).toBeUndefined();
    expect((await call('GET', `/checkpoint_items?${byServer}&offset=1&limit=1&sort=name:asc`)).body.checkpoint_items[0].name).toBe('pg_b');

    expect((await call('GET', `/checkpoint_items?name=pg_b`)).body.checkpoint_items).toHaveLength(1);
    expect((await call('GET', `/checkpoint_items?${byServer}&status=error`)).body.checkpoint_items).toEqual([]);
    expect((await call('GET', `/checkpoint_items?resource_name=pager&checkpoint_id=${ids[0]}`)).body.checkpoint_items.map((i: { checkpoint_id: string }) => i.checkpoint_id)).toEqual([ids[0]]);
    expect((await call('GET', `/checkpoint_items?${byServer}&resource_type=OS::Cinder::Volume`)).body.checkpoint_items).toEqual([]);
    expect((await call('GET', `/checkpoint_items?${byServer}&start_time=2999-01-01T00:00:00.000000`)).body.checkpoint_items).toEqual([]);
    expect((await call('GET', `/checkpoint_items?${byServer}&end_time=2999-01-01T00:00:00Z&start_time=2000-01-01`)).body.checkpoint_items).toHaveLength(3);

    expect((await call('GET', `/checkpoint_items/count?${byServer}`)).body).toEqual({ count: 3 });
    expect((await call('GET', `/checkpoint_items/count?${byServer}&name=pg_a`)).body).toEqual({ count: 1 });
    expect((await call('GET', `/checkpoint_items/count?resource_type=OS::Cinder::Volume`)).body).toEqual({ count: 0 });

    for (const bad of ['limit=0', 'limit=1001', 'sort=size', 'status=nope', 'start_time=yesterday', 'offset=-1']) {
      const r = await call('GET', `/checkpoint_items?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('OpenVBS.0400');
    }
    const unknownMarker = await call('GET', '/checkpoint_items?marker=0b7a4a8e-0000-4000-8000-000000000000');
    expect(unknownMarker.status).toBe(404);
  });

  it('checks whether servers can be protected: a good, an unknown and a busy server', async () => {
    const good = await server('good', [1]);
    const busy = await server('busy', [1, 1]);
    const bare = await env.services.servers.create(p, { name: 'bare' });
    // a VBS backup of one disk holds it
    await env.services.backups.create(p, { volumeId: busy.disks[1]!.volumeId, name: 'hold' });
    const unknown = '0b7a4a8e-0000-4000-8000-00000000dead';
    const r = await call('POST', `${providers}/resources/action`, {
      check_protectable: [good, busy, bare].map((s) => ({ resource_id: s.serverId, resource_type: 'OS::Nova::Server' })).concat([
        { resource_id: unknown, resource_type: 'OS::Nova::Server' },
        { resource_id: good.serverId, resource_type: 'OS::Cinder::Volume' },
      ]),
    });
    expect(r.status).toBe(200);
    expect(r.body.protectable).toEqual([
      { result: true, resource_type: 'OS::Nova::Server', resource_id: good.serverId },
      { result: false, resource_type: 'OS::Nova::Server', resource_id: busy.serverId, error_code: 'VolumeBackup.0012', error_msg: expect.stringContaining('busy with job') },
      { result: false, resource_type: 'OS::Nova::Server', resource_id: bare.serverId, error_code: 'OpenVBS.1502', error_msg: expect.stringContaining('no disks') },
      { result: false, resource_type: 'OS::Nova::Server', resource_id: unknown, error_code: 'OpenVBS.0404', error_msg: expect.any(String) },
      { result: false, resource_type: 'OS::Cinder::Volume', resource_id: good.serverId, error_code: 'OpenVBS.0400', error_msg: expect.any(String) },
    ]);
    // and protect itself refuses them
    expect((await protect(busy.serverId)).body.error.code).toBe('VolumeBackup.0012');
    expect((await protect(busy.serverId)).status).toBe(409);
    expect((await protect(bare.serverId)).status).toBe(400);
    expect((await protect(unknown)).status).toBe(404);
    const named = await protect(good.serverId, { backup_name: 'autobk_x' });
    expect(named.status).toBe(400);
    expect(named.body.error.code).toBe('VolumeBackup.0005');
    // the default name
    const unnamed = await protect(good.serverId);
    expect(unnamed.status).toBe(200);
    const item = (await call('GET', `/checkpoint_items?checkpoint_id=${unnamed.body.checkpoint.id}`)).body.checkpoint_items[0];
    expect(item.name).toMatch(/^manualbk_[0-9a-f]{8}$/);
  });

  it('answers 404 in the error shape for another provider id, and 400 for a bad body', async () => {
    const s = await server('prov', [1]);
    const other = '11111111-2222-4333-8444-555555555555';
    for (const [method, path, body] of [
      ['POST', `/providers/${other}/resources/${s.serverId}/action`, { protect: {} }],
      ['POST', `/providers/${other}/resources/action`, { check_protectable: [{ resource_id: s.serverId, resource_type: 'OS::Nova::Server' }] }],
      ['DELETE', `/providers/${other}/checkpoints/${s.serverId}`, undefined],
      ['POST', '/restores', { restore: { provider_id: other, checkpoint_id: s.serverId } }],
    ] as const) {
      const r = await call(method, path, body);
      expect(r.status, path).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'OpenVBS.0404', message: expect.stringContaining(`provider ${other}`) });
    }
    for (const body of [{}, { protect: { incremental: 'yes' } }, { check: [] }]) {
      const r = await call('POST', `${providers}/resources/${s.serverId}/action`, body);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('VolumeBackup.0002');
    }
    const both = await call('POST', `${providers}/resources/action`, { check_protectable: [] });
    expect(both.status).toBe(400);
    expect((await call('POST', '/restores', { restore: { checkpoint_id: 'x' } })).status).toBe(400);
  });

  it('restores onto the stopped server; checks restorability; refuses a running server, a smaller disk and a disk not the server’s', async () => {
    const { server: s, item } = await backedUp('rs', [2, 1]);
    const restore = (parameters: Record<string, unknown>) => call('POST', '/restores', { restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: item.checkpoint_id, parameters: { checkpoint_item_id: item.id, ...parameters } } });
    const small = await server('small', [1, 1], 'stopped');
    const running = await server('running', [2, 1], 'running');
    const check = await call('POST', `${providers}/resources/action`, {
      check_restorable: [s, small, running].map((t) => ({ checkpoint_item_id: item.id, target: { resource_id: t.serverId, resource_type: 'OS::Nova::Server' } })).concat([
        { checkpoint_item_id: '0b7a4a8e-0000-4000-8000-00000000beef', target: { resource_id: s.serverId, resource_type: 'OS::Nova::Server' } },
      ]),
    });
    expect(check.status).toBe(200);
    expect(check.body.restorable.map((r: { result: boolean; error_code?: string }) => [r.result, r.error_code])).toEqual([
      [true, undefined],
      [false, 'VolumeBackup.0209'],
      [false, 'OpenVBS.1503'],
      [false, 'OpenVBS.0404'],
    ]);

    let r = await restore({ targets: { server_id: small.serverId } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('VolumeBackup.0209');
    r = await restore({ targets: { server_id: running.serverId } });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('OpenVBS.1503');
    r = await restore({ targets: { volumes: [{ backup_id: item.extend_info.volume_backups[0].id, volume_id: running.disks[0]!.volumeId }] } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('OpenVBS.1504');

    r = await restore({ power_on: false });
    expect(r.status).toBe(200);
    expect(r.body.restore).toMatchObject({
      provider_id: CSBS_PROVIDER_ID,
      checkpoint_id: item.checkpoint_id,
      status: 'in_progress',
      parameters: { checkpoint_item_id: item.id, power_on: false, targets: { server_id: s.serverId } },
      resources_status: { [`OS::Nova::Server#${s.serverId}`]: 'restoring' },
      resources_reason: {},
    });
    expect(env.workflows.last()).toMatchObject({ workflow: 'server-restore', input: { backupId: item.checkpoint_id, serverId: s.serverId, powerOn: false } });
    const job = (await call('GET', `/jobs/${r.body.restore.id}`)).body;
    expect(job).toMatchObject({ job_type: 'bksRestoreServerBackup', status: 'INIT' });
    expect(job.sub_jobs.map((j: { job_type: string; entities: { volume_id: string } }) => [j.job_type, j.entities.volume_id]).sort()).toEqual(s.disks.map((d) => ['bksRestoreBackup', d.volumeId]).sort());
    expect((await call('GET', `/checkpoint_items/${item.id}`)).body.checkpoint_item.status).toBe('restoring');
    // a second restore while this one runs
    r = await restore({});
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('VolumeBackup.0089');
  });

  it('deletes an available server backup (200 and a job); refuses one being made, an unknown one', async () => {
    const { item } = await backedUp('del', [1]);
    const s = await server('del2', [1]);
    const protecting = (await protect(s.serverId)).body.checkpoint;
    let r = await call('DELETE', `${providers}/checkpoints/${protecting.id}`);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('OpenVBS.1001');
    r = await call('DELETE', `${providers}/checkpoints/0b7a4a8e-0000-4000-8000-00000000f00d`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('OpenVBS.0404');
    r = await call('DELETE', `${providers}/checkpoints/${item.checkpoint_id}`);
    expect(r.status).toBe(200);
    expect(r.body.job_id).toMatch(UUID);
    expect(env.workflows.last()).toMatchObject({ workflow: 'checkpoint-delete', input: { backupId: item.checkpoint_id } });
    expect((await call('GET', `/checkpoint_items/${item.id}`)).body.checkpoint_item.status).toBe('deleting');
    r = await call('DELETE', `${providers}/checkpoints/${item.checkpoint_id}`);
    expect(r.status).toBe(409);
  });

  it('answers quotas: server backups and their capacity, unlimited', async () => {
    const q = projectId();
    const token = (await env.services.tokens.create(q, { scope: 'admin' })).token;
    const get = async () => (await (await app.request(`/v1/${q}/quotas`, { headers: { 'X-Auth-Token': token } })).json()) as { quotas: { resources: unknown[] } };
    expect((await get()).quotas.resources).toEqual([
      { type: 'backups', used: 0, quota: -1 },
      { type: 'backup_capacity', unit: 'GB', used: 0, quota: -1 },
    ]);
    const vol = await env.services.volumes.create(q, { name: 'qd', sizeBytes: 3 * 1024 * MiB });
    const s = await env.services.servers.create(q, { name: 'q', disks: [{ volumeId: vol.volumeId }] });
    const r = await app.request(`/v1/${q}${providers}/resources/${s.serverId}/action`, { method: 'POST', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' }, body: JSON.stringify({ protect: {} }) });
    expect(r.status).toBe(200);
    expect((await get()).quotas.resources).toEqual([
      { type: 'backups', used: 1, quota: -1 },
      { type: 'backup_capacity', unit: 'GB', used: 3, quota: -1 },
    ]);
  });
});

// The servers extension through the REST API app (app.request): create with disks, attach and detach,
// start and stop, hooks (allowed or not by the operator), delete, and what it does to the volumes.
// Real stores (SQLite in memory); the inventory's own rules are tested in test/service/servers.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { ServerInventory } from '../../lib/volumes/servers.ts';
import { createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

let env: ServiceEnv;
let app: ApiApp;
let strictApp: ApiApp;
const p = projectId();
let admin: string;
let user: string;

beforeAll(async () => {
  env = await createServiceEnv();
  const withHooks = { ...env.services, servers: new ServerInventory({ servers: env.stores.servers, volumes: env.stores.volumes, allowHooks: true }) };
  app = createApiApp(withHooks, { logger: { error: () => {} } });
  strictApp = createApiApp({ ...env.services, servers: new ServerInventory({ servers: env.stores.servers, volumes: env.stores.volumes, allowHooks: false }) }, { logger: { error: () => {} } });
  admin = (await env.services.tokens.create(p, { scope: 'admin' })).token;
  user = (await env.services.tokens.create(p, { scope: 'user' })).token;
});
afterAll(async () => env?.close());

async function call(method: string, path: string, body?: unknown, options: { token?: string; app?: ApiApp } = {}) {
  const headers: Record<string, string> = { 'X-Auth-Token': options.token ?? admin };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await (options.app ?? app).request(`/v1/${p}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each route answers its own shape
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
}

const volume = async (name: string) => (await env.services.volumes.create(p, { name, sizeBytes: 1024 * 1024 })).volumeId;

describe('servers API', () => {
  it('creates a server with disks, shows and lists it; its volumes become in-use', async () => {
    const [a, b] = [await volume('root'), await volume('data')];
    const created = await call('POST', '/servers', { server: { name: 'web', disks: [{ volume_id: a }, { volume_id: b, device: '/dev/vdc' }] } });
    expect(created.status).toBe(201);
    const server = created.body.server;
    expect(server).toMatchObject({
      name: 'web',
      status: 'running',
      hooks: null,
      disks: [
        { volume_id: a, device: '/dev/vda', bootable: true },
        { volume_id: b, device: '/dev/vdc', bootable: false },
      ],
    });
    expect(server.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(server.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
    expect((await call('GET', `/servers/${server.id}`)).body.server).toEqual(server);
    expect((await call('GET', '/servers')).body.servers.map((s: { id: string }) => s.id)).toContain(server.id);
    const vol = await app.request(`/v2/${p}/volumes/${a}`, { headers: { 'X-Auth-Token': admin } });
    expect(((await vol.json()) as { volume: { status: string } }).volume.status).toBe('in-use');
  });

  it('attaches and detaches a disk; a volume attached elsewhere is refused; an attached volume cannot be deleted', async () => {
    const s1 = (await call('POST', '/servers', { server: { name: 's1', status: 'stopped' } })).body.server;
    const s2 = (await call('POST', '/servers', { server: { name: 's2' } })).body.server;
    expect(s1.status).toBe('stopped');
    const v = await volume('shared');
    const attached = await call('POST', `/servers/${s1.id}/disks`, { disk: { volume_id: v, device: '/dev/sdb', bootable: false } });
    expect(attached.status).toBe(200);
    expect(attached.body.server.disks).toEqual([{ volume_id: v, device: '/dev/sdb', bootable: false }]);

    const elsewhere = await call('POST', `/servers/${s2.id}/disks`, { disk: { volume_id: v } });
    expect(elsewhere.status).toBe(409);
    expect(elsewhere.body.error.code).toBe('OpenVBS.1402');
    expect(elsewhere.body.error.message).toContain(`attached to server ${s1.id}`);

    const del = await app.request(`/v2/${p}/volumes/${v}`, { method: 'DELETE', headers: { 'X-Auth-Token': admin } });
    expect(del.status).toBe(409);
    expect(((await del.json()) as { error: { message: string } }).error.message).toMatch(/attached to server .*detach it first/);

    expect((await call('DELETE', `/servers/${s1.id}/disks/${v}`)).status).toBe(204);
    expect((await call('GET', `/servers/${s1.id}`)).body.server.disks).toEqual([]);
    expect((await call('DELETE', `/servers/${s1.id}/disks/${v}`)).status).toBe(404);
    // free again: the other server takes it
    expect((await call('POST', `/servers/${s2.id}/disks`, { disk: { volume_id: v } })).status).toBe(200);
  });

  it('starts and stops a server with the Nova actions', async () => {
    const s = (await call('POST', '/servers', { server: { name: 'power' } })).body.server;
    let r = await call('POST', `/servers/${s.id}/action`, { 'os-stop': {} });
    expect(r.status).toBe(200);
    expect(r.body.server.status).toBe('stopped');
    r = await call('POST', `/servers/${s.id}/action`, { 'os-stop': {} });
    expect(r.body.server.status).toBe('stopped');
    r = await call('POST', `/servers/${s.id}/action`, { 'os-start': {} });
    expect(r.body.server.status).toBe('running');
    r = await call('POST', `/servers/${s.id}/action`, { 'os-start': {}, 'os-stop': {} });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('VolumeBackup.0002');
    r = await call('POST', `/servers/${s.id}/action`, { reboot: {} });
    expect(r.status).toBe(400);
  });

  it('sets and clears hooks; refuses them where the operator has not allowed hooks, and bad argv', async () => {
    const s = (await call('POST', '/servers', { server: { name: 'hooked' } })).body.server;
    const hooks = { freeze: ['/usr/bin/virsh', 'domfsfreeze', 'web'], thaw: ['/usr/bin/virsh', 'domfsthaw', 'web'], timeout_seconds: 30 };
    let r = await call('PUT', `/servers/${s.id}/hooks`, { hooks });
    expect(r.status).toBe(200);
    expect(r.body.server.hooks).toEqual(hooks);
    r = await call('PUT', `/servers/${s.id}/hooks`, { hooks: { freeze: ['virsh', 'domfsfreeze'], thaw: ['/bin/true'] } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/absolute path/);
    r = await call('PUT', `/servers/${s.id}/hooks`, { hooks: { freeze: ['/bin/true'] } });
    expect(r.status).toBe(400);
    r = await call('PUT', `/servers/${s.id}/hooks`, { hooks }, { app: strictApp });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('OpenVBS.1403');
    expect(r.body.error.message).toContain('OPENVBS_ALLOW_SERVER_HOOKS=1');
    expect((await call('DELETE', `/servers/${s.id}/hooks`)).status).toBe(204);
    expect((await call('GET', `/servers/${s.id}`)).body.server.hooks).toBeNull();
  });

  it('needs an admin token; validates bodies; unknown servers answer 404', async () => {
    const r = await call('GET', '/servers', undefined, { token: user });
    expect(r.status).toBe(403);
    expect((await call('POST', '/servers', { server: { name: '' } })).status).toBe(400);
    expect((await call('POST', '/servers', { server: { name: 'x', disks: [{ volume_id: 'v', device: '/dev/nvme0' }] } })).status).toBe(400);
    expect((await call('POST', '/servers', { server: { name: 'x', extra: 1 } })).status).toBe(400);
    const missing = await call('GET', '/servers/6f1c3c52-7a4b-4e43-9d3e-8d4c2a0f1b11');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toEqual({ code: 'OpenVBS.0404', message: 'server 6f1c3c52-7a4b-4e43-9d3e-8d4c2a0f1b11 not found' });
    const noVolume = await call('POST', '/servers', { server: { name: 'x', disks: [{ volume_id: 'nope' }] } });
    expect(noVolume.status).toBe(404);
    expect(noVolume.body.error.message).toBe('volume nope not found');
  });

  it('deletes a server and frees its disks', async () => {
    const v = await volume('freed');
    const s = (await call('POST', '/servers', { server: { name: 'gone', disks: [{ volume_id: v }] } })).body.server;
    expect((await call('DELETE', `/servers/${s.id}`)).status).toBe(204);
    expect((await call('GET', `/servers/${s.id}`)).status).toBe(404);
    expect((await env.services.volumes.get(p, v)).status).toBe('available');
    expect((await env.services.volumes.get(p, v)).attachedServerId).toBeUndefined();
    await env.services.volumes.delete(p, v);
  });

  it('lists every server route in the OpenAPI document', async () => {
    const doc = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/v1/{project_id}/servers']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/{project_id}/servers/{server_id}']!).sort()).toEqual(['delete', 'get']);
    expect(Object.keys(doc.paths['/v1/{project_id}/servers/{server_id}/action']!)).toEqual(['post']);
    expect(Object.keys(doc.paths['/v1/{project_id}/servers/{server_id}/disks']!)).toEqual(['post']);
    expect(Object.keys(doc.paths['/v1/{project_id}/servers/{server_id}/disks/{volume_id}']!)).toEqual(['delete']);
    expect(Object.keys(doc.paths['/v1/{project_id}/servers/{server_id}/hooks']!).sort()).toEqual(['delete', 'put']);
  });
});

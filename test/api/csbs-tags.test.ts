// CSBS tags through the REST API app: server backups (/csbs_backup/{checkpoint_item_id}/tags…) and CSBS policies
// (/csbs_backup_policy/{policy_id}/tags…), with the VBS policy tags' shapes, rules and codes. Real stores (SQLite
// in memory); server backups are only started (their workflows recorded): tags do not depend on their status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import { createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';
import { appCaller } from '../support/app-call.ts';

let env: ServiceEnv;
let app: ApiApp;
const p = projectId();
const other = projectId();
let userToken: string;
let otherToken: string;

beforeAll(async () => {
  env = await createServiceEnv();
  app = createApiApp(env.services, { logger: { error: () => undefined } });
  // user-scope tokens: the tag routes are a user's, like the backups and policies they tag
  userToken = (await env.services.tokens.create(p, { scope: 'user' })).token;
  otherToken = (await env.services.tokens.create(other, { scope: 'user' })).token;
});
afterAll(async () => env?.close());

const call = appCaller(() => app, () => userToken);
const V1 = `/v1/${p}`;
const MISSING = '0b7a4a8e-0000-4000-8000-000000000000';
let serial = 0;

/** A server backup (started; its workflow only recorded) of a new one-disk server: its checkpoint item id. */
async function serverBackup(tags: Array<{ key: string; value: string }> = []): Promise<string> {
  const volumeId = (await env.services.volumes.create(p, { name: `tag-d${serial}`, sizeBytes: 1024 * 1024 })).volumeId;
  const serverId = (await env.services.servers.create(p, { name: `tag-s${serial++}`, status: 'running', disks: [{ volumeId }] })).serverId;
  const r = await call('POST', `${V1}/providers/${CSBS_PROVIDER_ID}/resources/${serverId}/action`, { protect: { backup_name: `tagged_${serial}`, tags } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (await env.stores.checkpoints.get(p, r.body.checkpoint.id))!.itemId;
}

async function csbsPolicy(tags: Array<{ key: string; value: string }> = []): Promise<string> {
  const r = await call('POST', `${V1}/policies`, {
    policy: {
      name: `tagged-policy-${serial++}`,
      provider_id: CSBS_PROVIDER_ID,
      parameters: { common: {} },
      resources: [],
      tags,
      scheduled_operations: [{ operation_type: 'backup', enabled: true, trigger: { properties: { pattern: 'FREQ=DAILY;BYHOUR=3;BYMINUTE=0' } }, operation_definition: { max_backups: 5 } }],
    },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.policy.id;
}

const kinds = [
  { name: 'server backups', base: `${V1}/csbs_backup`, make: serverBackup },
  { name: 'CSBS policies', base: `${V1}/csbs_backup_policy`, make: csbsPolicy },
];

describe.each(kinds)('tags of $name', ({ base, make }) => {
  let first: string;
  let second: string;

  beforeAll(async () => {
    first = await make([{ key: 'key', value: 'value' }]);
    second = await make([{ key: 'env', value: 'prod' }]);
  });

  it('adds one tag, creates, updates and deletes in batches, removes by key, and lists them', async () => {
    expect((await call('POST', `${base}/${first}/tags`, { tag: { key: 'env', value: 'prod' } })).status).toBe(204);
    expect((await call('POST', `${base}/${first}/tags/action`, { action: 'create', tags: [{ key: 'tier', value: 'gold' }, { key: 'env', value: 'stage' }] })).status).toBe(204);
    expect((await call('GET', `${base}/${first}/tags`)).body).toEqual({ tags: [{ key: 'key', value: 'value' }, { key: 'env', value: 'stage' }, { key: 'tier', value: 'gold' }] });
    expect((await call('POST', `${base}/${first}/tags/action`, { action: 'update', tags: [{ key: 'tier', value: 'silver' }] })).status).toBe(204);
    expect((await call('DELETE', `${base}/${first}/tags/key`)).status).toBe(204);
    const again = await call('DELETE', `${base}/${first}/tags/key`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('OpenVBS.0404');
    // a delete naming a value removes the tag only when the value matches; a batch delete of a missing key is no error
    expect((await call('POST', `${base}/${first}/tags/action`, { action: 'delete', tags: [{ key: 'tier', value: 'gold' }, { key: 'absent' }] })).status).toBe(204);
    expect((await call('GET', `${base}/${first}/tags`)).body).toEqual({ tags: [{ key: 'env', value: 'stage' }, { key: 'tier', value: 'silver' }] });
    expect((await call('POST', `${base}/${first}/tags/action`, { action: 'delete', tags: [{ key: 'tier', value: 'silver' }] })).status).toBe(204);
    expect((await call('GET', `${base}/${first}/tags`)).body).toEqual({ tags: [{ key: 'env', value: 'stage' }] });
  });

  it('lists the project’s tag keys with their values, and filters and counts by tags', async () => {
    const all = await call('GET', `${base}/tags`);
    expect(all.status).toBe(200);
    expect(all.body.tags).toEqual([{ key: 'env', values: ['prod', 'stage'] }]);

    const filtered = await call('POST', `${base}/resource_instances/action`, { action: 'filter', tags: [{ key: 'env', values: ['stage'] }], limit: '10', offset: '0' });
    expect(filtered.status).toBe(200);
    expect(filtered.body.total_count).toBe(1);
    expect(filtered.body.resources).toEqual([{ resource_id: first, resource_name: expect.any(String), resource_detail: null, tags: [{ key: 'env', value: 'stage' }] }]);

    const any = await call('POST', `${base}/resource_instances/action`, { action: 'filter', tags_any: [{ key: 'env', values: [] }], limit: 1, offset: 1 });
    expect(any.body.total_count).toBe(2);
    expect(any.body.resources.map((r: { resource_id: string }) => r.resource_id)).toEqual([second]);

    expect((await call('POST', `${base}/resource_instances/action`, { action: 'count', not_tags_any: [{ key: 'env', values: ['prod'] }] })).body).toEqual({ total_count: 1 });
    expect((await call('POST', `${base}/resource_instances/action`, { action: 'count', not_tags: [{ key: 'env', values: [] }] })).body).toEqual({ total_count: 0 });
  });

  it('refuses bad tags with the code the VBS policy tags answer (OpenVBS.1004; a body off its schema VolumeBackup.0002)', async () => {
    const vbs = await call('POST', `/v2/${p}/backuppolicy`, { backup_policy_name: `vbs_${serial++}`, scheduled_policy: { start_time: '02:00', frequency: 1, rentention_num: 2 }, tags: [{ key: 'env', value: 'prod' }] });
    expect(vbs.status, JSON.stringify(vbs.body)).toBe(200);
    const vbsBase = `/v2/${p}/backuppolicy/${vbs.body.backup_policy_id}`;
    const many = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    for (const [suffix, body, code] of [
      ['tags', { tag: { key: 'k'.repeat(37), value: 'v' } }, 'OpenVBS.1004'],
      ['tags', { tag: { key: 'k', value: 'v'.repeat(44) } }, 'OpenVBS.1004'],
      ['tags/action', { action: 'create', tags: many }, 'OpenVBS.1004'],
      ['tags/action', { action: 'update', tags: [{ key: 'k', value: 'v'.repeat(44) }] }, 'VolumeBackup.0002'],
    ] as const) {
      const r = await call('POST', `${base}/${second}/${suffix}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code, JSON.stringify(body)).toBe(code);
      expect((await call('POST', `${vbsBase}/${suffix}`, body)).body.error.code).toBe(code);
    }
    await call('DELETE', vbsBase);
    expect((await call('GET', `${base}/${second}/tags`)).body).toEqual({ tags: [{ key: 'env', value: 'prod' }] });
  });

  it('answers 404 for an unknown id, another project’s, and a bad one', async () => {
    for (const [method, path, body] of [
      ['GET', `${base}/${MISSING}/tags`],
      ['POST', `${base}/${MISSING}/tags`, { tag: { key: 'a', value: 'b' } }],
      ['POST', `${base}/${MISSING}/tags/action`, { action: 'delete', tags: [{ key: 'a' }] }],
      ['DELETE', `${base}/${MISSING}/tags/a`],
    ] as const) {
      const r = await call(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error.code).toBe('OpenVBS.0404');
    }
    const otherBase = base.replace(p, other);
    expect((await call('GET', `${otherBase}/${first}/tags`, undefined, otherToken)).status).toBe(404);
    expect((await call('GET', `${otherBase}/tags`, undefined, otherToken)).body).toEqual({ tags: [] });
    expect((await call('GET', `${base}/bad.id/tags`)).status).toBe(400);
  });
});

describe('where the tags show', () => {
  it('a server backup’s tags are its checkpoint item’s', async () => {
    const item = await serverBackup();
    expect((await call('POST', `${V1}/csbs_backup/${item}/tags`, { tag: { key: 'team', value: 'db' } })).status).toBe(204);
    expect((await call('GET', `${V1}/checkpoint_items/${item}`)).body.checkpoint_item.tags).toEqual([{ key: 'team', value: 'db' }]);
  });

  it('a CSBS policy’s tags are the policy’s (and go onto the backups it makes)', async () => {
    const policyId = await csbsPolicy();
    expect((await call('POST', `${V1}/csbs_backup_policy/${policyId}/tags`, { tag: { key: 'team', value: 'db' } })).status).toBe(204);
    expect((await call('GET', `${V1}/policies/${policyId}`)).body.policy.tags).toEqual([{ key: 'team', value: 'db' }]);
    // a VBS policy id is not a CSBS policy's, nor the other way round
    const vbs = await call('POST', `/v2/${p}/backuppolicy`, { backup_policy_name: `vbs_${serial++}`, scheduled_policy: { start_time: '02:00', frequency: 1, rentention_num: 2 } });
    expect((await call('GET', `${V1}/csbs_backup_policy/${vbs.body.backup_policy_id}/tags`)).status).toBe(404);
    expect((await call('GET', `/v2/${p}/backuppolicy/${policyId}/tags`)).status).toBe(404);
  });
});

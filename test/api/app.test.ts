// The REST API app driven with app.request(): auth, project isolation, validation, VBS field names, the
// OpenAPI document. Real stores (SQLite in memory) and local keys; workflows recorded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { apiWildcardArn, authorizeToken } from '../../lib/api/authorizer.ts';
import type { Services } from '../../lib/service/factory.ts';
import { GIB } from '../../lib/service/sizes.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

let env: ServiceEnv;
let app: ApiApp;
let lookups = 0;
const logged: unknown[][] = [];
const pA = projectId();
const pB = projectId();
let tokenA: string;
let tokenB: string;

beforeAll(async () => {
  env = await createServiceEnv();
  const tokens = env.services.tokens;
  const authenticate = tokens.authenticate.bind(tokens);
  tokens.authenticate = async (token) => {
    lookups++;
    return authenticate(token);
  };
  app = createApiApp(env.services, { logger: { error: (...args) => logged.push(args) } });
  tokenA = (await tokens.create(pA)).token;
  tokenB = (await tokens.create(pB)).token;
});
afterAll(async () => env?.close());

async function call(method: string, path: string, options: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? tokenA : options.token;
  if (token !== null) headers['X-Auth-Token'] = token;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

const A = `/v2/${pA}`;

const BACKUP_FIELDS = [
  'availability_zone',
  'container',
  'created_at',
  'data_timestamp',
  'description',
  'fail_reason',
  'has_dependent_backups',
  'id',
  'is_incremental',
  'links',
  'name',
  'object_count',
  'os-bak-tenant-attr:tenant_id',
  'os-openvbs-bak-share-attr:shared_to_me',
  'os-openvbs-bak-stats-attr:stats',
  'service_metadata',
  'size',
  'snapshot_id',
  'status',
  'tags',
  'updated_at',
  'volume_id',
];

describe('auth', () => {
  it('answers 401 without a token or with an unknown one', async () => {
    for (const token of [null, '', 'ovbs_unknown', 'x'.repeat(600)]) {
      const res = await call('GET', `${A}/backups`, { token });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('OpenVBS.0401');
      expect(typeof res.body.error.message).toBe('string');
    }
    expect((await call('GET', `/v1/${pA}/jobs/abc`, { token: null })).status).toBe(401);
    expect((await call('POST', `${A}/cloudbackups`, { token: null, body: '{bad' })).status).toBe(401);
  });

  it('caches a resolved token', async () => {
    const { token } = await env.services.tokens.create(pA);
    const before = lookups;
    expect((await call('GET', `${A}/backups`, { token })).status).toBe(200);
    expect((await call('GET', `${A}/volumes`, { token })).status).toBe(200);
    expect(lookups - before).toBe(1);
  });

  it('answers 404 for another project’s paths, the same as for a missing resource', async () => {
    const backup = backupRecord(pB);
    await env.stores.backups.createBackup(backup);
    const vol = await env.services.volumes.create(pB, { name: 'b-disk', sizeBytes: GIB });
    await env.services.keys.create(pB, { alias: `alias/b-${pB}` });
    // B's own token sees it
    expect((await call('GET', `/v2/${pB}/backups/${backup.backupId}`, { token: tokenB })).status).toBe(200);

    const show = await call('GET', `/v2/${pB}/backups/${backup.backupId}`);
    expect(show.status).toBe(404);
    const missing = await call('GET', `${A}/backups/${backup.backupId}`);
    expect(show.body).toEqual(missing.body);
    expect(show.body).toEqual({ itemNotFound: { message: `Backup ${backup.backupId} could not be found.`, code: 404 } });

    for (const [method, path, body] of [
      ['GET', `/v2/${pB}/backups`],
      ['GET', `/v2/${pB}/backups/detail`],
      ['GET', `/v2/${pB}/cloudbackups/quota`],
      ['GET', `/v2/${pB}/volumes`],
      ['GET', `/v2/${pB}/volumes/${vol.volumeId}`],
      ['DELETE', `/v2/${pB}/volumes/${vol.volumeId}`],
      ['DELETE', `/v2/${pB}/backups/${backup.backupId}`],
      ['POST', `/v2/${pB}/cloudbackups/${backup.backupId}`],
      ['POST', `/v2/${pB}/cloudbackups/${backup.backupId}/restore`, { restore: { volume_id: vol.volumeId } }],
      ['POST', `/v2/${pB}/cloudbackups`, { backup: { volume_id: vol.volumeId, name: 'steal' } }],
      ['POST', `/v1/${pB}/tokens`, {}],
      ['GET', `/v1/${pB}/keys`],
      ['POST', `/v1/${pB}/keys`, { key: { alias: 'alias/steal' } }],
      ['GET', `/v1/${pB}/jobs/whatever`],
    ] as Array<[string, string, unknown?]>) {
      const res = await call(method, path, { body });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    // the same answers as for the caller's own missing resources
    expect((await call('GET', `/v2/${pB}/volumes/${vol.volumeId}`)).body).toEqual((await call('GET', `${A}/volumes/${vol.volumeId}`)).body);
    expect((await call('GET', `/v1/${pB}/jobs/j1`)).body).toEqual((await call('GET', `/v1/${pA}/jobs/j1`)).body);
    expect((await call('POST', `/v2/${pB}/cloudbackups/${backup.backupId}`)).body).toEqual((await call('POST', `${A}/cloudbackups/${backup.backupId}`)).body);
    // and nothing of B changed
    expect((await env.stores.backups.getBackup(pB, backup.backupId))!.status).toBe('available');
    expect(await env.stores.volumes.get(pB, vol.volumeId)).toBeDefined();
    expect((await env.services.keys.list(pB)).map((k) => k.alias)).toEqual([`alias/b-${pB}`]);
  });
});

describe('validation', () => {
  it('answers 400 in the error shape for malformed or incomplete bodies', async () => {
    const malformed = await call('POST', `${A}/cloudbackups`, { body: '{"backup":' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toEqual({ code: 'VolumeBackup.0002', message: expect.any(String) });

    for (const body of [{}, { backup: { name: 'x' } }, { backup: { volume_id: 7, name: 'x' } }, { backup: 'x' }, [], 'null']) {
      const res = await call('POST', `${A}/cloudbackups`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VolumeBackup.0002');
    }
    const noBody = await call('POST', `${A}/cloudbackups`);
    expect(noBody.status).toBe(400);
    expect((await call('POST', `${A}/cloudbackups/abc/restore`, { body: { restore: {} } })).body.error.code).toBe('VolumeBackup.0002');
    expect((await call('POST', `${A}/volumes`, { body: { volume: { name: 'v' } } })).status).toBe(400);
    expect((await call('POST', `${A}/volumes`, { body: { volume: { name: 'v', size: 1, size_bytes: 5 } } })).status).toBe(400);
    expect((await call('POST', `${A}/volumes`, { body: { volume: { name: 'v', size: 0 } } })).status).toBe(400);
    expect((await call('POST', `${A}/volumes`, { body: { volume: { name: 'v', size: 1.5 } } })).status).toBe(400);
  });

  it('answers 415 for a body that is not JSON and 413 for a huge one', async () => {
    const res = await call('POST', `${A}/cloudbackups`, { body: 'backup=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('OpenVBS.0415');
    const huge = await call('POST', `${A}/cloudbackups`, { body: { backup: { volume_id: 'v', name: 'x', description: 'd'.repeat(300_000) } } });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('OpenVBS.0413');
  });

  it('answers 400 for malformed ids and query parameters', async () => {
    for (const path of [
      `${A}/backups/${'x'.repeat(300)}`,
      `${A}/backups/bad%20id`,
      `/v1/${pA}/jobs/${'j'.repeat(129)}`,
      `${A}/volumes/a.b`,
      `${A}/backups?limit=abc`,
      `${A}/backups?limit=0`,
      `${A}/backups?offset=-1`,
      `${A}/backups/detail?sort_key=colour`,
      `${A}/backups/detail?sort_dir=up`,
      `${A}/backups?status=bogus`,
      `${A}/backups?marker=${'m'.repeat(200)}`,
    ]) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code, path).toBe('OpenVBS.0400');
    }
    expect((await call('POST', `${A}/cloudbackups/${'x'.repeat(300)}/restore`, { body: { restore: { volume_id: 'v' } } })).status).toBe(400);
    // an unknown marker is not found, as OpenStack answers it
    const marker = await call('GET', `${A}/backups?marker=nope`);
    expect({ status: marker.status, code: marker.body.error.code }).toEqual({ status: 404, code: 'OpenVBS.0404' });
  });

  it('never answers 500 to odd input', async () => {
    const odd: Array<[string, string, unknown?]> = [
      ['GET', `${A}/backups/%ZZ`],
      ['GET', `${A}/backups/%E0%A4%A`],
      ['GET', `${A}/backups?name=%ZZ&limit=1e999`],
      ['GET', `${A}/backups?limit=99999999999999999999`],
      ['GET', `${A}/backups?offset=1.5`],
      ['GET', `/v2/%ZZ/backups`],
      ['POST', `${A}/cloudbackups`, { backup: { volume_id: 'v', name: 'n', tags: 'x' } }],
      ['POST', `${A}/cloudbackups`, { backup: { volume_id: 'v'.repeat(255), name: 'n', extend_param: { FullBackup: 'maybe' } } }],
      ['POST', `${A}/cloudbackups`, { backup: { volume_id: '../../etc/passwd', name: 'n' } }],
      ['POST', `${A}/volumes`, { volume: { name: 'big', size_bytes: 1e300 } }],
      ['POST', `${A}/volumes`, { volume: { name: 'p', path: '/proc/self/environ' } }],
      ['POST', `${A}/volumes`, { volume: { name: 'p', path: '/dev/null' } }],
      ['POST', `${A}/volumes`, { volume: { name: 'p', path: '/' } }],
      ['POST', `/v1/${pA}/tokens`, { token: { description: 5 } }],
      ['POST', `/v1/${pA}/keys`, { key: { alias: 7, description: ['x'] } }],
      ['POST', `/v1/${pA}/keys`, { key: { alias: 'alias/../../etc' } }],
      ['POST', `${A}/volumes`, { volume: { name: 'k', size: 1, kms_key_id: '../../../keys/x.key' } }],
      ['POST', `${A}/cloudbackups/x/restore`, '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'],
    ];
    for (const [method, path, body] of odd) {
      const res = await call(method, path, { body });
      expect(res.status, `${method} ${path}`).toBeLessThan(500);
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(res.body.error?.code ?? res.body.itemNotFound?.code, `${method} ${path}`).toBeDefined();
    }
  });

  it('answers VBS codes for the backup rules', async () => {
    const vol = await env.services.volumes.create(pA, { name: 'rules', sizeBytes: GIB });
    const res = await call('POST', `${A}/cloudbackups`, { body: { backup: { volume_id: vol.volumeId, name: 'autobk_x' } } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VolumeBackup.0005');
    const gone = await call('POST', `${A}/cloudbackups`, { body: { backup: { volume_id: 'gone', name: 'x' } } });
    expect({ status: gone.status, body: gone.body }).toEqual({ status: 404, body: { error: { code: 'OpenVBS.0404', message: 'volume gone not found' } } });
  });

  it('answers 404 in the error shape for unknown routes', async () => {
    const res = await call('GET', `${A}/no-such-route`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('OpenVBS.0404');
    expect((await call('PUT', `${A}/backups/abc`)).status).toBe(405);
    const outside = await call('GET', '/nowhere', { token: null });
    expect(outside.status).toBe(404);
    expect(outside.body.error.code).toBe('OpenVBS.0404');
  });

  it('answers 500 without details for unexpected errors', async () => {
    const backups: Services['backups'] = Object.assign(Object.create(env.services.backups) as Services['backups'], {
      quota: async (): Promise<never> => {
        throw new Error('secret connection string in here');
      },
    });
    const brokenApp = createApiApp({ ...env.services, backups }, { logger: { error: (...args) => logged.push(args) } });
    const res = await brokenApp.request(`${A}/cloudbackups/quota`, { headers: { 'X-Auth-Token': tokenA } });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text).error.code).toBe('OpenVBS.0500');
    expect(text).not.toContain('secret');
    expect(text).not.toContain('at ');
    expect(JSON.stringify(logged.at(-1))).toBeDefined();
    expect(logged.length).toBeGreaterThan(0);
  });
});

describe('backups and jobs', () => {
  it('creates a backup as a job and shows the job with VBS field names', async () => {
    const vol = await env.services.volumes.create(pA, { name: 'api-disk', sizeBytes: GIB });
    const res = await call('POST', `${A}/cloudbackups`, {
      body: { backup: { volume_id: vol.volumeId, name: 'api-1', description: 'd', snapshot_id: null, tags: [{ key: 'k', value: 'v' }], extend_param: { FullBackup: 'true' }, incremental: true } },
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['job_id']);
    expect(env.workflows.last().input).toMatchObject({ forceFull: true, name: 'api-1', description: 'd', tags: [{ key: 'k', value: 'v' }] });

    const job = await call('GET', `/v1/${pA}/jobs/${res.body.job_id}`);
    expect(job.status).toBe(200);
    expect(Object.keys(job.body).sort()).toEqual(
      ['begin_time', 'bytes_done', 'bytes_total', 'end_time', 'entities', 'error_code', 'fail_reason', 'job_id', 'job_type', 'progress', 'status', 'sub_jobs'].sort(),
    );
    expect(job.body).toMatchObject({ job_id: res.body.job_id, job_type: 'bksCreateBackup', status: 'INIT', end_time: null, error_code: null, fail_reason: null, sub_jobs: [], progress: 0, bytes_done: 0, bytes_total: 0 });
    expect(job.body.entities).toEqual({ backup_id: expect.any(String), volume_id: vol.volumeId });
    expect(typeof job.body.begin_time).toBe('string');
    // the backup item appears only once the workflow has prepared it
    const show = await call('GET', `${A}/backups/${job.body.entities.backup_id}`);
    expect(show.status).toBe(404);
    expect(show.body.itemNotFound.code).toBe(404);

    const busy = await call('POST', `${A}/cloudbackups`, { body: { backup: { volume_id: vol.volumeId, name: 'api-2' } } });
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe('VolumeBackup.0012');
  });

  it('shows a backup with exactly the VBS fields and the stats extension', async () => {
    const parent = backupRecord(pA, { volumeId: 'vol-show', sizeBytes: 10 * GIB + 1 });
    const child = backupRecord(pA, {
      volumeId: 'vol-show',
      parentId: parent.backupId,
      customerKey: true,
      kmsKeyId: 'arn:aws:kms:us-east-1:000000000000:key/customer',
      description: 'incremental',
      sizeBytes: 10 * GIB + 1,
    });
    await env.stores.backups.createBackup(parent);
    await env.stores.backups.createBackup(child);
    const res = await call('GET', `${A}/backups/${child.backupId}`);
    expect(res.status).toBe(200);
    const b = res.body.backup;
    expect(Object.keys(b).sort()).toEqual(BACKUP_FIELDS);
    expect(b).toMatchObject({
      id: child.backupId,
      name: child.name,
      status: 'available',
      description: 'incremental',
      availability_zone: 'test-az',
      volume_id: 'vol-show',
      fail_reason: null,
      size: 11,
      object_count: 2072,
      'os-bak-tenant-attr:tenant_id': pA,
      has_dependent_backups: false,
      is_incremental: true,
      snapshot_id: null,
      created_at: child.createdAt.replace(/Z$/, '000'),
    });
    expect(typeof b.service_metadata).toBe('string');
    expect(JSON.parse(b.service_metadata)).toMatchObject({ Type: '1', progress: '100', CMKID: 'arn:aws:kms:us-east-1:000000000000:key/customer', ST: '0', bootable: 'false' });
    expect(b.links).toEqual([
      { href: `http://localhost/v2/${pA}/backups/${child.backupId}`, rel: 'self' },
      { href: `http://localhost/${pA}/backups/${child.backupId}`, rel: 'bookmark' },
    ]);
    const full = (await call('GET', `${A}/backups/${parent.backupId}`)).body.backup;
    expect(full.is_incremental).toBe(false);
    expect(JSON.parse(full.service_metadata)).toMatchObject({ Type: '0', CMKID: '' });
  });

  it('shows what a committed backup cost, and nulls while it is creating', async () => {
    const parent = backupRecord(pA, { volumeId: 'vol-cost' });
    const stats = { blocks: 3072, zeroBlocks: 1000, chunkCount: 2072, reusedFromParent: 2000, dedupHits: 40, newChunks: 32, storedBytes: 9_876_543, logicalBytes: 1036 * 1024 * 1024, packsWritten: 1 };
    const child = backupRecord(pA, { volumeId: 'vol-cost', parentId: parent.backupId, stats });
    const { stats: _none, ...unstarted } = backupRecord(pA, { volumeId: 'vol-cost', parentId: child.backupId, status: 'creating' });
    for (const r of [parent, child, unstarted]) await env.stores.backups.createBackup(r);

    const committed = (await call('GET', `${A}/backups/${child.backupId}`)).body.backup;
    expect(committed['os-openvbs-bak-stats-attr:stats']).toEqual({
      stored_bytes: 9_876_543,
      new_chunks: 32,
      reused_blocks: 2000,
      dedup_blocks: 40,
      zero_blocks: 1000,
      blocks: 3072,
      logical_bytes: 1036 * 1024 * 1024,
      packs_written: 1,
      parent_backup_id: parent.backupId,
    });
    expect(JSON.parse(committed.service_metadata)).toEqual({
      Type: '1',
      progress: '100',
      CMKID: '',
      ST: '0',
      bootable: 'false',
      DL: '3',
      stored_bytes: '9876543',
      new_chunks: '32',
      reused_blocks: '2000',
      dedup_blocks: '40',
      zero_blocks: '1000',
      parent_backup_id: parent.backupId,
    });
    const full = (await call('GET', `${A}/backups/${parent.backupId}`)).body.backup;
    expect(full['os-openvbs-bak-stats-attr:stats']).toMatchObject({ stored_bytes: 600 * 1024 * 1024, reused_blocks: 0, parent_backup_id: null });
    expect(JSON.parse(full.service_metadata)).toMatchObject({ stored_bytes: String(600 * 1024 * 1024), parent_backup_id: '' });

    const creating = (await call('GET', `${A}/backups/${unstarted.backupId}`)).body.backup;
    expect(creating.status).toBe('creating');
    expect(creating['os-openvbs-bak-stats-attr:stats']).toEqual({
      stored_bytes: null,
      new_chunks: null,
      reused_blocks: null,
      dedup_blocks: null,
      zero_blocks: null,
      blocks: null,
      logical_bytes: null,
      packs_written: null,
      parent_backup_id: child.backupId,
    });
    expect(JSON.parse(creating.service_metadata)).toMatchObject({ stored_bytes: '', new_chunks: '', reused_blocks: '', dedup_blocks: '', zero_blocks: '', parent_backup_id: child.backupId });

    const detail = (await call('GET', `${A}/backups/detail?volume_id=vol-cost`)).body.backups;
    expect(detail.find((b: { id: string }) => b.id === child.backupId)['os-openvbs-bak-stats-attr:stats'].stored_bytes).toBe(9_876_543);
  });

  it('lists backups and details with filters and next links', async () => {
    const vol = 'vol-list';
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const rec = backupRecord(pA, { volumeId: vol, name: `list-${i}`, createdAt: new Date(Date.UTC(2026, 2, 1, 0, i)).toISOString() });
      ids.push(rec.backupId);
      await env.stores.backups.createBackup(rec);
    }
    const list = await call('GET', `${A}/backups?volume_id=${vol}&limit=2`);
    expect(list.status).toBe(200);
    expect(list.body.backups).toHaveLength(2);
    expect(Object.keys(list.body.backups[0]).sort()).toEqual(['id', 'links', 'name']);
    expect(list.body.backups.map((b: { id: string }) => b.id)).toEqual([ids[4], ids[3]]);
    expect(list.body.backups_links).toHaveLength(1);
    expect(list.body.backups_links[0].rel).toBe('next');
    const next = new URL(list.body.backups_links[0].href);
    expect(next.pathname).toBe(`${A}/backups`);
    expect(next.searchParams.get('marker')).toBe(ids[3]);
    expect(next.searchParams.get('volume_id')).toBe(vol);

    const page2 = await call('GET', `${next.pathname}${next.search}`);
    expect(page2.body.backups.map((b: { id: string }) => b.id)).toEqual([ids[2], ids[1]]);
    const page3 = await call('GET', new URL(page2.body.backups_links[0].href).pathname + new URL(page2.body.backups_links[0].href).search);
    expect(page3.body.backups.map((b: { id: string }) => b.id)).toEqual([ids[0]]);
    expect(page3.body.backups_links).toBeUndefined();

    const detail = await call('GET', `${A}/backups/detail?volume_id=${vol}&sort_key=name&sort_dir=asc&offset=1&limit=10`);
    expect(detail.status).toBe(200);
    expect(detail.body.backups.map((b: { name: string }) => b.name)).toEqual(['list-1', 'list-2', 'list-3', 'list-4']);
    for (const b of detail.body.backups) expect(Object.keys(b).sort()).toEqual(BACKUP_FIELDS);
    expect((await call('GET', `${A}/backups?name=list-3`)).body.backups.map((b: { id: string }) => b.id)).toEqual([ids[3]]);
    expect((await call('GET', `${A}/backups/detail?status=error&volume_id=${vol}`)).body.backups).toEqual([]);
  });

  it('deletes with 202 (native) or as a job, and refuses wrong statuses', async () => {
    const a = backupRecord(pA);
    const b = backupRecord(pA);
    const creating = backupRecord(pA, { status: 'creating' });
    for (const r of [a, b, creating]) await env.stores.backups.createBackup(r);
    const native = await call('DELETE', `${A}/backups/${a.backupId}`);
    expect(native.status).toBe(202);
    expect(native.body).toBeUndefined();
    expect((await env.stores.backups.getBackup(pA, a.backupId))!.status).toBe('deleting');
    const asJob = await call('POST', `${A}/cloudbackups/${b.backupId}`);
    expect(asJob.status).toBe(200);
    expect((await call('GET', `/v1/${pA}/jobs/${asJob.body.job_id}`)).body.job_type).toBe('bksDeleteBackup');
    const refused = await call('DELETE', `${A}/backups/${creating.backupId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('OpenVBS.1001');
    expect((await call('DELETE', `${A}/backups/missing`)).status).toBe(404);
  });

  it('restores as a job and natively (202 with the restore object)', async () => {
    const backup = backupRecord(pA, { sizeBytes: GIB });
    const other = backupRecord(pA, { sizeBytes: GIB });
    await env.stores.backups.createBackup(backup);
    await env.stores.backups.createBackup(other);
    const t1 = await env.services.volumes.create(pA, { name: 'target-1', sizeBytes: GIB });
    const t2 = await env.services.volumes.create(pA, { name: 'target-2', sizeBytes: GIB });
    const small = await env.services.volumes.create(pA, { name: 'small', sizeBytes: GIB - 1 });

    const job = await call('POST', `${A}/cloudbackups/${backup.backupId}/restore`, { body: { restore: { volume_id: t1.volumeId } } });
    expect(job.status).toBe(200);
    expect(Object.keys(job.body)).toEqual(['job_id']);
    const native = await call('POST', `${A}/backups/${other.backupId}/restore`, { body: { restore: { volume_id: t2.volumeId } } });
    expect(native.status).toBe(202);
    expect(native.body).toEqual({ restore: { backup_id: other.backupId, volume_id: t2.volumeId, volume_name: 'target-2' } });
    const tooSmall = await call('POST', `${A}/cloudbackups/${backup.backupId}/restore`, { body: { restore: { volume_id: small.volumeId } } });
    expect(tooSmall.status).toBe(409);
    // the backup is restoring now, so it is refused first
    expect(tooSmall.body.error.code).toBe('VolumeBackup.0089');
  });

  it('reports quotas', async () => {
    const res = await call('GET', `${A}/cloudbackups/quota`);
    expect(res.status).toBe(200);
    const types = res.body.quotas.resources.map((r: { type: string }) => r.type);
    expect(types).toEqual(['backups', 'backup_gigabytes']);
    for (const r of res.body.quotas.resources) {
      expect(Object.keys(r).sort()).toEqual(['quota', 'reserved', 'type', 'used']);
      expect(r.quota).toBe(-1);
      expect(r.used).toBeGreaterThan(0);
    }
  });
});

describe('volumes and tokens', () => {
  it('creates, lists, shows and deletes volumes', async () => {
    const p = projectId();
    const token = (await env.services.tokens.create(p)).token;
    const created = await call('POST', `/v2/${p}/volumes`, { token, body: { volume: { name: 'one-gig', size: 1 } } });
    expect(created.status).toBe(200);
    const v = created.body.volume;
    expect(Object.keys(v).sort()).toEqual(['created_at', 'encrypted', 'id', 'kms_key_id', 'name', 'path', 'size', 'size_bytes', 'status', 'status_reason', 'updated_at']);
    expect(v).toMatchObject({ name: 'one-gig', size: 1, size_bytes: GIB, status: 'available', status_reason: null, encrypted: false, kms_key_id: null });
    const key = (await call('POST', `/v1/${p}/keys`, { token, body: { key: { alias: `alias/cust-${p}` } } })).body.key;
    const bytes = await call('POST', `/v2/${p}/volumes`, { token, body: { volume: { name: 'odd', size_bytes: GIB + 1, kms_key_id: `alias/cust-${p}` } } });
    expect(bytes.body.volume).toMatchObject({ size: 2, size_bytes: GIB + 1, encrypted: true, kms_key_id: key.arn });
    const foreignKey = await call('POST', `/v2/${p}/volumes`, { token, body: { volume: { name: 'enc', size: 1, kms_key_id: (await env.services.keys.create(pA)).arn } } });
    expect(foreignKey.status).toBe(404);
    expect(foreignKey.body.error.code).toBe('OpenVBS.1104');
    const list = await call('GET', `/v2/${p}/volumes`, { token });
    expect(list.body.volumes.map((x: { id: string }) => x.id)).toEqual([v.id, bytes.body.volume.id]);
    expect((await call('GET', `/v2/${p}/volumes/${v.id}`, { token })).body.volume.id).toBe(v.id);
    const del = await call('DELETE', `/v2/${p}/volumes/${v.id}`, { token });
    expect(del.status).toBe(204);
    const gone = await call('GET', `/v2/${p}/volumes/${v.id}`, { token });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('OpenVBS.0404');
    const badPath = await call('POST', `/v2/${p}/volumes`, { token, body: { volume: { name: 'p', path: '/definitely/not/here.img' } } });
    expect(badPath.status).toBe(403);
    // no OPENVBS_VOLUME_ROOTS here: registering paths is off
    expect(badPath.body.error.code).toBe('OpenVBS.1102');
  });

  it('issues tokens for the caller’s project (201, secret shown once)', async () => {
    const res = await call('POST', `/v1/${pA}/tokens`, { body: { token: { description: 'ci' } } });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body.token).sort()).toEqual(['created_at', 'description', 'expires_at', 'id', 'project_id', 'scope', 'token']);
    expect(res.body.token).toMatchObject({ project_id: pA, scope: 'user', description: 'ci', expires_at: null });
    expect((await call('GET', `${A}/backups`, { token: res.body.token.token })).status).toBe(200);
    const noBody = await call('POST', `/v1/${pA}/tokens`);
    expect(noBody.status).toBe(201);
  });
});

describe('keys', () => {
  const KEY_FIELDS = ['alias', 'arn', 'created_at', 'description', 'enabled', 'id'];

  it('creates keys (201) and lists the project’s own, oldest first', async () => {
    const p = projectId();
    const token = (await env.services.tokens.create(p)).token;
    const named = await call('POST', `/v1/${p}/keys`, { token, body: { key: { alias: `alias/disks-${p}`, description: 'finance disks' } } });
    expect(named.status).toBe(201);
    expect(Object.keys(named.body)).toEqual(['key']);
    expect(Object.keys(named.body.key).sort()).toEqual(KEY_FIELDS);
    expect(named.body.key).toMatchObject({ alias: `alias/disks-${p}`, description: 'finance disks', enabled: true });
    expect(named.body.key.arn).toContain(named.body.key.id);
    expect(Number.isNaN(Date.parse(named.body.key.created_at))).toBe(false);

    const bare = await call('POST', `/v1/${p}/keys`, { token, body: { key: {} } });
    expect(bare.status).toBe(201);
    expect(bare.body.key).toMatchObject({ alias: null, description: null, enabled: true });
    expect((await call('POST', `/v1/${p}/keys`, { token, body: {} })).status).toBe(201);
    expect((await call('POST', `/v1/${p}/keys`, { token })).status).toBe(201);

    const list = await call('GET', `/v1/${p}/keys`, { token });
    expect(list.status).toBe(200);
    expect(Object.keys(list.body)).toEqual(['keys']);
    expect(list.body.keys).toHaveLength(4);
    expect(list.body.keys.slice(0, 2)).toEqual([named.body.key, bare.body.key]);
    for (const k of list.body.keys) expect(Object.keys(k).sort()).toEqual(KEY_FIELDS);
  });

  it('answers 400 OpenVBS.1201 for a bad or reserved alias and 409 OpenVBS.1202 for one in use', async () => {
    for (const alias of ['finance', 'alias/', 'alias/white space', `alias/${'x'.repeat(251)}`, 'alias/aws/ebs', 'alias/openvbs-service']) {
      const res = await call('POST', `/v1/${pA}/keys`, { body: { key: { alias } } });
      expect(res.status, alias).toBe(400);
      expect(res.body.error.code, alias).toBe('OpenVBS.1201');
    }
    const alias = `alias/taken-${pA}`;
    expect((await call('POST', `/v1/${pA}/keys`, { body: { key: { alias } } })).status).toBe(201);
    const again = await call('POST', `/v1/${pA}/keys`, { body: { key: { alias } } });
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({ code: 'OpenVBS.1202', message: `alias ${alias} is already in use` });
    const byOther = await call('POST', `/v1/${pB}/keys`, { token: tokenB, body: { key: { alias } } });
    expect(byOther.status).toBe(409);
    expect(byOther.body.error.code).toBe('OpenVBS.1202');
  });

  it('never shows one project’s keys to another', async () => {
    const mine = await call('POST', `/v1/${pA}/keys`, { body: { key: { description: 'only A' } } });
    expect(mine.status).toBe(201);
    const foreign = await call('GET', `/v1/${pA}/keys`, { token: tokenB });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('OpenVBS.0404');
    const bList = await call('GET', `/v1/${pB}/keys`, { token: tokenB });
    expect(bList.status).toBe(200);
    expect(bList.body.keys.map((k: { id: string }) => k.id)).not.toContain(mine.body.key.id);
    expect((await call('GET', `/v1/${pA}/keys`)).body.keys.map((k: { id: string }) => k.id)).toContain(mine.body.key.id);
  });
});

describe('OpenAPI document', () => {
  it('is served without auth and lists every route', async () => {
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { securitySchemes: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes.sort()).toEqual(
      [
        'POST /v2/{project_id}/cloudbackups',
        'GET /v2/{project_id}/cloudbackups/quota',
        'POST /v2/{project_id}/cloudbackups/{backup_id}',
        'POST /v2/{project_id}/cloudbackups/{backup_id}/restore',
        'POST /v2/{project_id}/backups/{backup_id}/restore',
        'POST /v2/{project_id}/backups',
        'GET /v1/{project_id}/jobs/{job_id}',
        'POST /v1/{project_id}/jobs/{job_id}/cancel',
        'GET /v2/{project_id}/backups',
        'GET /v2/{project_id}/backups/detail',
        'GET /v2/{project_id}/backups/{backup_id}',
        'DELETE /v2/{project_id}/backups/{backup_id}',
        'POST /v2/{project_id}/os-vendor-backup-sharing',
        'GET /v2/{project_id}/os-vendor-backup-sharing/detail',
        'GET /v2/{project_id}/os-vendor-backup-sharing/count',
        'GET /v2/{project_id}/os-vendor-backup-sharing/{share_id}',
        'DELETE /v2/{project_id}/os-vendor-backup-sharing/{share_id}',
        'POST /v2/{project_id}/volumes',
        'GET /v2/{project_id}/volumes',
        'GET /v2/{project_id}/volumes/{volume_id}',
        'DELETE /v2/{project_id}/volumes/{volume_id}',
        'POST /v1/{project_id}/tokens',
        'GET /v1/{project_id}/tokens',
        'DELETE /v1/{project_id}/tokens/{token_id}',
        'POST /v1/{project_id}/keys',
        'GET /v1/{project_id}/keys',
        'POST /v1/{project_id}/servers',
        'GET /v1/{project_id}/servers',
        'GET /v1/{project_id}/servers/{server_id}',
        'DELETE /v1/{project_id}/servers/{server_id}',
        'POST /v1/{project_id}/servers/{server_id}/action',
        'POST /v1/{project_id}/servers/{server_id}/disks',
        'DELETE /v1/{project_id}/servers/{server_id}/disks/{volume_id}',
        'PUT /v1/{project_id}/servers/{server_id}/hooks',
        'DELETE /v1/{project_id}/servers/{server_id}/hooks',
        'POST /v1/{project_id}/providers/{provider_id}/resources/action',
        'POST /v1/{project_id}/providers/{provider_id}/resources/{resource_id}/action',
        'GET /v1/{project_id}/checkpoint_items',
        'GET /v1/{project_id}/checkpoint_items/count',
        'GET /v1/{project_id}/checkpoint_items/{checkpoint_item_id}',
        'DELETE /v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}',
        'POST /v1/{project_id}/restores',
        'GET /v1/{project_id}/quotas',
        'POST /v1/{project_id}/subscriptions',
        'GET /v1/{project_id}/subscriptions',
        'GET /v1/{project_id}/subscriptions/{subscription_id}',
        'DELETE /v1/{project_id}/subscriptions/{subscription_id}',
        'POST /v2/{project_id}/backuppolicy',
        'GET /v2/{project_id}/backuppolicy',
        'PUT /v2/{project_id}/backuppolicy/{policy_id}',
        'DELETE /v2/{project_id}/backuppolicy/{policy_id}',
        'POST /v2/{project_id}/backuppolicy/{policy_id}/action',
        'GET /v2/{project_id}/backuppolicy/{policy_id}/backuptasks',
        'GET /v2/{project_id}/backuppolicy/tags',
        'GET /v2/{project_id}/backuppolicy/{policy_id}/tags',
        'POST /v2/{project_id}/backuppolicy/{policy_id}/tags',
        'POST /v2/{project_id}/backuppolicy/{policy_id}/tags/action',
        'DELETE /v2/{project_id}/backuppolicy/{policy_id}/tags/{key}',
        'POST /v2/{project_id}/backuppolicy/resource_instances/action',
        'POST /v2/{project_id}/backuppolicyresources',
        'POST /v2/{project_id}/backuppolicyresources/{policy_id}/deleted_resources',
        'POST /v1/{project_id}/policy-tick',
        'POST /v1/{project_id}/policies',
        'GET /v1/{project_id}/policies',
        'GET /v1/{project_id}/policies/{policy_id}',
        'PUT /v1/{project_id}/policies/{policy_id}',
        'DELETE /v1/{project_id}/policies/{policy_id}',
        'POST /v1/{project_id}/providers/{provider_id}/checkpoints',
        'GET /v1/{project_id}/csbs_backup/tags',
        'POST /v1/{project_id}/csbs_backup/resource_instances/action',
        'GET /v1/{project_id}/csbs_backup/{checkpoint_item_id}/tags',
        'POST /v1/{project_id}/csbs_backup/{checkpoint_item_id}/tags',
        'POST /v1/{project_id}/csbs_backup/{checkpoint_item_id}/tags/action',
        'DELETE /v1/{project_id}/csbs_backup/{checkpoint_item_id}/tags/{key}',
        'GET /v1/{project_id}/csbs_backup_policy/tags',
        'POST /v1/{project_id}/csbs_backup_policy/resource_instances/action',
        'GET /v1/{project_id}/csbs_backup_policy/{policy_id}/tags',
        'POST /v1/{project_id}/csbs_backup_policy/{policy_id}/tags',
        'POST /v1/{project_id}/csbs_backup_policy/{policy_id}/tags/action',
        'DELETE /v1/{project_id}/csbs_backup_policy/{policy_id}/tags/{key}',
      ].sort(),
    );
    expect(doc.components.securitySchemes.XAuthToken).toEqual({ type: 'apiKey', in: 'header', name: 'X-Auth-Token' });
  });

  it('describes the backup stats extension', async () => {
    type Schema = { properties: Record<string, { $ref?: string; type?: unknown; description?: string }>; description?: string };
    const doc = (await (await app.request('/openapi.json')).json()) as { components: { schemas: Record<string, Schema> } };
    const backup = doc.components.schemas.Backup!;
    expect(backup.properties['os-openvbs-bak-stats-attr:stats']).toEqual({ $ref: '#/components/schemas/BackupStats' });
    expect(backup.properties.service_metadata!.description).toContain('stored_bytes');
    const stats = doc.components.schemas.BackupStats!;
    expect(Object.keys(stats.properties).sort()).toEqual(
      ['blocks', 'dedup_blocks', 'logical_bytes', 'new_chunks', 'packs_written', 'parent_backup_id', 'reused_blocks', 'stored_bytes', 'zero_blocks'].sort(),
    );
    expect(stats.properties.stored_bytes).toMatchObject({ type: ['integer', 'null'], description: expect.stringMatching(/bytes/i) });
    expect(stats.description).toMatch(/null until the backup is committed/);
  });
});

describe('token authorizer', () => {
  const methodArn = 'arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/GET/v2/p/backups';

  it('allows the whole API for a known token with the project in the context', async () => {
    const result = await authorizeToken({ authorizationToken: tokenA, methodArn }, (t) => env.services.tokens.authenticate(t));
    expect(result.principalId).toBe(pA);
    expect(result.context).toEqual({ projectId: pA, scope: 'admin' });
    expect(result.policyDocument.Statement).toEqual([{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: 'arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/*' }]);
  });

  it('answers Unauthorized for unknown or missing tokens', async () => {
    await expect(authorizeToken({ authorizationToken: 'nope', methodArn }, (t) => env.services.tokens.authenticate(t))).rejects.toThrow(/^Unauthorized$/);
    await expect(authorizeToken({ authorizationToken: '', methodArn }, (t) => env.services.tokens.authenticate(t))).rejects.toThrow(/^Unauthorized$/);
    expect(() => apiWildcardArn('garbage')).toThrow();
  });

  it('lets the API trust the authorizer context behind API Gateway', async () => {
    const trusting = createApiApp(env.services, { trustAuthorizerContext: true, baseUrl: 'https://api.example.com/prod/' });
    const rec = backupRecord(pA);
    await env.stores.backups.createBackup(rec);
    const res = await trusting.request(`${A}/backups/${rec.backupId}`, {}, { requestContext: { authorizer: { projectId: pA } } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { backup: { links: Array<{ href: string }> } };
    expect(body.backup.links[0]!.href).toBe(`https://api.example.com/prod/v2/${pA}/backups/${rec.backupId}`);
    // still project-bound
    expect((await trusting.request(`/v2/${pB}/backups`, {}, { requestContext: { authorizer: { projectId: pA } } })).status).toBe(404);
    // and without a context it falls back to the token
    expect((await trusting.request(`${A}/backups`)).status).toBe(401);
  });
});

// VBS wire details the API keeps: timestamps as VBS writes them, RFC 4122 v4 ids, the native OpenStack
// create, one "not found" per resource, 405 for a wrong method, and an OpenAPI document that states what
// the server enforces. Real stores (SQLite in memory) and local keys; workflows recorded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { VBS_TIME_PATTERN, vbsTime } from '../../lib/api/schemas.ts';
import { BACKUP_NAME_MAX, BACKUP_NAME_PATTERN, validateBackupName } from '../../lib/service/backup-rules.ts';
import { KEY_ALIAS_PATTERN } from '../../lib/service/keys.ts';
import { GIB } from '../../lib/service/sizes.ts';
import { VolumeBackupInput } from '../../lib/workflows/contracts.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let env: ServiceEnv;
let app: ApiApp;
const p = projectId();
let token: string;
const V2 = `/v2/${p}`;

beforeAll(async () => {
  env = await createServiceEnv();
  app = createApiApp(env.services, { logger: { error: () => undefined } });
  token = (await env.services.tokens.create(p)).token;
});
afterAll(async () => env?.close());

async function call(method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { 'X-Auth-Token': token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await app.request(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const volume = (name: string, sizeBytes = GIB) => env.services.volumes.create(p, { name, sizeBytes });

describe('timestamps', () => {
  it('formats stored ISO times as VBS writes them: UTC, microseconds, no zone', () => {
    expect(vbsTime('2018-08-16T06:35:46.346Z')).toBe('2018-08-16T06:35:46.346000');
    expect(vbsTime('2018-08-16T06:35:46.346549Z')).toBe('2018-08-16T06:35:46.346549');
    expect(vbsTime('2018-08-16T06:35:46.346549')).toBe('2018-08-16T06:35:46.346549');
    expect(vbsTime('2018-08-16T08:35:46.5+02:00')).toBe('2018-08-16T06:35:46.500000');
    expect(vbsTime('2018-08-16T06:35:46Z')).toBe('2018-08-16T06:35:46.000000');
    expect(() => vbsTime('yesterday')).toThrow(/not a timestamp/);
  });

  it('shows every time of backups, jobs, volumes and keys in that form', async () => {
    const rec = backupRecord(p, { createdAt: '2026-03-01T10:20:30.123Z', updatedAt: '2026-03-02T00:00:00.000Z' });
    await env.stores.backups.createBackup(rec);
    const shown = (await call('GET', `${V2}/backups/${rec.backupId}`)).body.backup;
    expect(shown).toMatchObject({ created_at: '2026-03-01T10:20:30.123000', updated_at: '2026-03-02T00:00:00.000000', data_timestamp: '2026-03-01T10:20:30.123000' });
    for (const b of (await call('GET', `${V2}/backups/detail`)).body.backups) {
      for (const field of ['created_at', 'updated_at', 'data_timestamp']) expect(b[field], field).toMatch(VBS_TIME_PATTERN);
    }

    const vol = await volume('times');
    const { job_id } = (await call('POST', `${V2}/cloudbackups`, { backup: { volume_id: vol.volumeId, name: 'times' } })).body;
    await env.stores.jobs.update(p, job_id, { status: 'SUCCESS', beginTime: '2026-03-03T01:02:03.456Z', endTime: '2026-03-03T01:02:09.000Z' });
    const job = (await call('GET', `/v1/${p}/jobs/${job_id}`)).body;
    expect({ begin: job.begin_time, end: job.end_time }).toEqual({ begin: '2026-03-03T01:02:03.456000', end: '2026-03-03T01:02:09.000000' });

    const v = (await call('GET', `${V2}/volumes/${vol.volumeId}`)).body.volume;
    expect(v.created_at).toMatch(VBS_TIME_PATTERN);
    expect(v.updated_at).toMatch(VBS_TIME_PATTERN);
    const key = (await call('POST', `/v1/${p}/keys`, { key: {} })).body.key;
    expect(key.created_at).toMatch(VBS_TIME_PATTERN);
  });
});

describe('ids', () => {
  it('hands out RFC 4122 version 4 UUIDs for backups and jobs', async () => {
    const vol = await volume('ids');
    const { job_id } = (await call('POST', `${V2}/cloudbackups`, { backup: { volume_id: vol.volumeId, name: 'ids' } })).body;
    expect(job_id).toMatch(UUID_V4);
    const job = (await call('GET', `/v1/${p}/jobs/${job_id}`)).body;
    expect(job.job_id).toBe(job_id);
    expect(job.entities.backup_id).toMatch(UUID_V4);
    await env.stores.volumes.release(p, vol.volumeId, job_id);
    const native = (await call('POST', `${V2}/backups`, { backup: { volume_id: vol.volumeId } })).body.backup;
    expect(native.id).toMatch(UUID_V4);
    const restoreJob = await call('POST', `${V2}/cloudbackups/${backupRecord(p).backupId}/restore`, { restore: { volume_id: vol.volumeId } });
    expect(restoreJob.status).toBe(404);
  });

  it('resolves backups and jobs under the ids of earlier versions (32 hex digits)', async () => {
    const hex = backupRecord(p, { backupId: '0123456789abcdef0123456789abcdef' });
    await env.stores.backups.createBackup(hex);
    expect((await call('GET', `${V2}/backups/${hex.backupId}`)).body.backup.id).toBe(hex.backupId);
    const jobId = 'fedcba9876543210fedcba9876543210';
    await env.stores.jobs.create({ projectId: p, jobId, jobType: 'bksDeleteBackup', status: 'INIT', entities: {}, bytesDone: 0, bytesTotal: 0, createdAt: '2025-06-01T00:00:00Z' });
    const job = await call('GET', `/v1/${p}/jobs/${jobId}`);
    expect({ status: job.status, id: job.body.job_id, begin: job.body.begin_time }).toEqual({ status: 200, id: jobId, begin: '2025-06-01T00:00:00.000000' });
  });
});

describe('native create: POST /v2/{project_id}/backups', () => {
  it('answers 202 {"backup":{id, links, name}} and starts the same job as cloudbackups', async () => {
    const vol = await volume('native');
    const res = await call('POST', `${V2}/backups`, { backup: { volume_id: vol.volumeId, name: 'native-1', description: 'from cinder', container: 'ignored', force: true } });
    expect(res.status).toBe(202);
    expect(Object.keys(res.body)).toEqual(['backup']);
    expect(Object.keys(res.body.backup).sort()).toEqual(['id', 'links', 'name']);
    const id = res.body.backup.id as string;
    expect(res.body.backup).toEqual({
      id,
      name: 'native-1',
      links: [
        { href: `http://localhost/v2/${p}/backups/${id}`, rel: 'self' },
        { href: `http://localhost/${p}/backups/${id}`, rel: 'bookmark' },
      ],
    });

    const started = env.workflows.last();
    expect(started.workflow).toBe('volume-backup');
    const input = VolumeBackupInput.parse(started.input);
    expect(input).toMatchObject({ projectId: p, backupId: id, volumeId: vol.volumeId, name: 'native-1', description: 'from cinder' });
    expect(input.forceFull).toBeUndefined();
    const job = (await call('GET', `/v1/${p}/jobs/${input.jobId}`)).body;
    expect(job).toMatchObject({ job_type: 'bksCreateBackup', status: 'INIT', entities: { backup_id: id, volume_id: vol.volumeId } });
    expect((await env.stores.volumes.get(p, vol.volumeId))!.lockJobId).toBe(input.jobId);

    // a second one while the first runs: a conflict with the busy volume's VBS code, as cloudbackups answers
    const busy = await call('POST', `${V2}/backups`, { backup: { volume_id: vol.volumeId, name: 'native-2' } });
    expect({ status: busy.status, code: busy.body.error.code }).toEqual({ status: 409, code: 'VolumeBackup.0012' });
  });

  it('takes incremental=false as a full backup, names an unnamed backup after its id, and keeps the VBS name rules', async () => {
    const vol = await volume('native-full');
    const res = await call('POST', `${V2}/backups`, { backup: { volume_id: vol.volumeId, name: null, incremental: false } });
    expect(res.status).toBe(202);
    expect(res.body.backup.name).toBe(`backup-${(res.body.backup.id as string).slice(0, 8)}`);
    expect(VolumeBackupInput.parse(env.workflows.last().input)).toMatchObject({ backupId: res.body.backup.id, forceFull: true });

    const other = await volume('native-rules');
    const auto = await call('POST', `${V2}/backups`, { backup: { volume_id: other.volumeId, name: 'autobk_1' } });
    expect({ status: auto.status, code: auto.body.error.code }).toEqual({ status: 400, code: 'VolumeBackup.0005' });
    const noVolume = await call('POST', `${V2}/backups`, { backup: { name: 'x' } });
    expect({ status: noVolume.status, code: noVolume.body.error.code }).toEqual({ status: 400, code: 'VolumeBackup.0002' });
  });
});

describe('not found', () => {
  const error404 = (code: string) => ({ status: 404, body: { error: { code, message: expect.any(String) } } });
  const answer = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body);
    return { status: res.status, body: res.body };
  };

  it('answers one shape and code per resource, wherever its id comes from', async () => {
    const target = await volume('nf-target');
    const rec = backupRecord(p, { sizeBytes: GIB });
    await env.stores.backups.createBackup(rec);
    const missing = '6f1c3c52-7a4b-4e43-9d3e-8d4c2a0f1b11';

    // the native show: OpenStack's itemNotFound, as the reference gives it
    expect(await answer('GET', `${V2}/backups/${missing}`)).toEqual({ status: 404, body: { itemNotFound: { message: `Backup ${missing} could not be found.`, code: 404 } } });
    // every other backup route
    for (const [method, path, body] of [
      ['DELETE', `${V2}/backups/${missing}`],
      ['POST', `${V2}/backups/${missing}/restore`, { restore: { volume_id: target.volumeId } }],
      ['POST', `${V2}/cloudbackups/${missing}`],
      ['POST', `${V2}/cloudbackups/${missing}/restore`, { restore: { volume_id: target.volumeId } }],
    ] as Array<[string, string, unknown?]>) {
      expect(await answer(method, path, body), `${method} ${path}`).toEqual(error404('OpenVBS.0404'));
    }
    // a volume: in the path or named in a body
    expect(await answer('GET', `${V2}/volumes/${missing}`)).toEqual(error404('OpenVBS.0404'));
    expect(await answer('DELETE', `${V2}/volumes/${missing}`)).toEqual(error404('OpenVBS.0404'));
    expect(await answer('POST', `${V2}/cloudbackups`, { backup: { volume_id: missing, name: 'x' } })).toEqual(error404('OpenVBS.0404'));
    expect(await answer('POST', `${V2}/backups`, { backup: { volume_id: missing, name: 'x' } })).toEqual(error404('OpenVBS.0404'));
    expect(await answer('POST', `${V2}/cloudbackups/${rec.backupId}/restore`, { restore: { volume_id: missing } })).toEqual(error404('OpenVBS.0404'));
    expect(await answer('POST', `${V2}/backups/${rec.backupId}/restore`, { restore: { volume_id: missing } })).toEqual(error404('OpenVBS.0404'));
    // a job: VBS's own code
    expect(await answer('GET', `/v1/${p}/jobs/${missing}`)).toEqual(error404('common.0011'));
    // a list marker
    expect(await answer('GET', `${V2}/backups?marker=${missing}`)).toEqual(error404('OpenVBS.0404'));
    // and the backup the failed restores named is untouched
    expect((await env.stores.backups.getBackup(p, rec.backupId))!.status).toBe('available');
  });
});

describe('methods', () => {
  it('answers 405 with Allow and the error shape for a method a path does not take', async () => {
    for (const [method, path, allow] of [
      ['PUT', `${V2}/backups`, 'GET, HEAD, OPTIONS, POST'],
      ['DELETE', `${V2}/cloudbackups`, 'OPTIONS, POST'],
      ['PATCH', `${V2}/backups/abc`, 'DELETE, GET, HEAD, OPTIONS'],
      ['GET', `${V2}/cloudbackups/abc/restore`, 'OPTIONS, POST'],
      ['PATCH', `/v1/${p}/keys`, 'GET, HEAD, OPTIONS, POST'],
      // a path's own route, not the parametrized one it also matches
      ['DELETE', `${V2}/cloudbackups/quota`, 'GET, HEAD, OPTIONS'],
      ['PUT', `${V2}/backups/detail`, 'GET, HEAD, OPTIONS'],
      ['POST', `/v1/${p}/jobs/abc`, 'GET, HEAD, OPTIONS'],
    ]) {
      const res = await call(method!, path!);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(res.body, `${method} ${path}`).toEqual({ error: { code: 'OpenVBS.0405', message: expect.stringContaining(`${method} is not allowed`) } });
    }
  });

  it('answers OPTIONS with the allowed methods, HEAD like GET, and 404 for paths it does not serve', async () => {
    const options = await call('OPTIONS', `${V2}/volumes`);
    expect({ status: options.status, allow: options.headers.get('allow') }).toEqual({ status: 204, allow: 'GET, HEAD, OPTIONS, POST' });
    expect((await call('HEAD', `${V2}/backups`)).status).toBe(200);
    for (const path of [`${V2}/nothing`, `${V2}/backups/a/b/c`, `/v3/${p}/backups`]) {
      const res = await call('PUT', path);
      expect({ status: res.status, code: res.body?.error.code, allow: res.headers.get('allow') }, path).toEqual({ status: 404, code: 'OpenVBS.0404', allow: null });
    }
    // the token still comes first
    const anonymous = await app.request(`${V2}/backups`, { method: 'PUT' });
    expect(anonymous.status).toBe(401);
  });
});

describe('OpenAPI document', () => {
  type Schema = { type?: unknown; properties?: Record<string, Schema>; required?: string[]; oneOf?: Schema[]; additionalProperties?: unknown; pattern?: string; minLength?: number; maxLength?: number; $ref?: string };
  type Doc = {
    paths: Record<string, Record<string, { requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> }; responses: Record<string, unknown> }>>;
    components: { schemas: Record<string, Schema> };
  };
  let doc: Doc;
  beforeAll(async () => {
    doc = (await (await app.request('/openapi.json')).json()) as Doc;
  });
  const schema = (s: Schema): Schema => (s.$ref ? doc.components.schemas[s.$ref.split('/').pop()!]! : s);

  it('requires exactly one of size, size_bytes or path for a volume (size_bytes may come with path, backup_id with a size or alone), as the server does', async () => {
    const forms = schema(doc.components.schemas.CreateVolumeRequest!.properties!.volume!).oneOf!;
    // four closed forms: a request fits at most one
    expect(forms.map((f) => ({ required: f.required, fields: Object.keys(f.properties!).sort(), additionalProperties: f.additionalProperties }))).toEqual([
      { required: ['name', 'size'], fields: ['backup_id', 'kms_key_id', 'name', 'size'], additionalProperties: false },
      { required: ['name', 'size_bytes'], fields: ['backup_id', 'kms_key_id', 'name', 'size_bytes'], additionalProperties: false },
      { required: ['name', 'backup_id'], fields: ['backup_id', 'kms_key_id', 'name'], additionalProperties: false },
      { required: ['name', 'path'], fields: ['kms_key_id', 'name', 'path', 'size_bytes'], additionalProperties: false },
    ]);
    expect(forms[0]!.properties!.name).toMatchObject({ minLength: 1, maxLength: 255 });
    expect(forms[3]!.properties!.path).toMatchObject({ pattern: '^\\/' });
    for (const given of [{}, { size: 1, size_bytes: GIB }, { size: 1, path: '/x' }, { size: 1, size_bytes: GIB, path: '/x' }, { path: 'relative.img' }, { size: 1, sise_bytes: 2 }]) {
      const res = await call('POST', `${V2}/volumes`, { volume: { name: 'v', ...given } });
      expect({ status: res.status, code: res.body.error.code }, JSON.stringify(given)).toEqual({ status: 400, code: 'VolumeBackup.0002' });
    }
    expect((await call('POST', `${V2}/volumes`, { volume: { name: 'by-bytes', size_bytes: GIB + 1 } })).body.volume.size_bytes).toBe(GIB + 1);
    // lengths in characters, as JSON Schema counts them: 255 astral characters are a valid name
    expect((await call('POST', `${V2}/volumes`, { volume: { name: '🙂'.repeat(255), size: 1 } })).status).toBe(200);
    expect((await call('POST', `${V2}/volumes`, { volume: { name: '🙂'.repeat(256), size: 1 } })).status).toBe(400);
  });

  it('states the backup name and key alias rules the service enforces', () => {
    const backup = schema(doc.components.schemas.CreateBackupRequest!.properties!.backup!);
    expect(backup.properties!.name).toMatchObject({ pattern: BACKUP_NAME_PATTERN, minLength: 1, maxLength: BACKUP_NAME_MAX });
    const documented = new RegExp(BACKUP_NAME_PATTERN, 'u');
    for (const name of ['nightly-1', 'Daten_ü', '数据_1', 'auto', 'Autobk_1', 'xauto', 'with space', 'a<b', '', 'x'.repeat(64), 'x'.repeat(65), 'ok٣']) {
      let accepted = true;
      try {
        validateBackupName(name);
      } catch {
        accepted = false;
      }
      expect(documented.test(name) && [...name].length <= BACKUP_NAME_MAX, name).toBe(accepted);
    }
    const key = schema(doc.components.schemas.CreateKeyRequest!.properties!.key!);
    expect(key.properties!.alias).toMatchObject({ pattern: KEY_ALIAS_PATTERN });
    const alias = new RegExp(KEY_ALIAS_PATTERN);
    expect(['alias/disks', 'alias/a/b_c-1'].every((a) => alias.test(a))).toBe(true);
    expect(['disks', 'alias/', 'alias/aws/ebs', 'alias/AWS/x', 'alias/openvbs-x', 'alias/OpenVBS', 'alias/white space'].some((a) => alias.test(a))).toBe(false);
  });

  it('lists the statuses each route answers, and which bodies are required', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const statuses = Object.keys(op.responses);
        const label = `${method.toUpperCase()} ${path}`;
        for (const s of ['400', '401', '404', '500']) expect(statuses, label).toContain(s);
        if (op.requestBody) {
          for (const s of ['413', '415']) expect(statuses, label).toContain(s);
        }
        // the inventory, keys and tokens need an admin token
        if (/\/(volumes|keys|tokens)\b/.test(path)) expect(statuses, label).toContain('403');
      }
    }
    const required = (method: string, path: string) => doc.paths[path]![method]!.requestBody?.required;
    expect(required('post', '/v2/{project_id}/cloudbackups')).toBe(true);
    expect(required('post', '/v2/{project_id}/backups')).toBe(true);
    expect(required('post', '/v2/{project_id}/volumes')).toBe(true);
    expect(required('post', '/v1/{project_id}/keys')).toBe(false);
    expect(Object.keys(doc.paths['/v2/{project_id}/backups']!.post!.responses)).toContain('202');
    // conflicts with a resource's state: a busy volume, a backup that is not available, a path or alias taken
    for (const [method, path] of [
      ['post', '/v2/{project_id}/cloudbackups'],
      ['post', '/v2/{project_id}/backups'],
      ['post', '/v2/{project_id}/cloudbackups/{backup_id}/restore'],
      ['post', '/v2/{project_id}/backups/{backup_id}/restore'],
      ['post', '/v2/{project_id}/cloudbackups/{backup_id}'],
      ['delete', '/v2/{project_id}/backups/{backup_id}'],
      ['post', '/v2/{project_id}/volumes'],
      ['delete', '/v2/{project_id}/volumes/{volume_id}'],
      ['post', '/v1/{project_id}/keys'],
    ] as const) {
      expect(Object.keys(doc.paths[path]![method]!.responses), `${method} ${path}`).toContain('409');
    }
    expect(schema(doc.components.schemas.Backup!).properties!.created_at).toMatchObject({ pattern: VBS_TIME_PATTERN.source });
  });
});

// Backup sharing and tags through the real API app: the os-vendor-backup-sharing shapes (create's list, detail with
// its backup, count, show, delete 200), the timestamps, filters and paging, the receiver's view of shared backups
// and its refusals, the owner's refusal to delete a shared backup, and volumes created from backups (own and
// shared). Real stores (SQLite in memory) and local keys; workflows recorded, not run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { VBS_TIME_PATTERN } from '../../lib/api/schemas.ts';
import { BACKUP_PROJECT_ENTITY } from '../../lib/catalog/shares.ts';
import { GIB } from '../../lib/service/sizes.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let env: ServiceEnv;
let app: ApiApp;
const A = projectId();
const B = projectId();
const C = projectId();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  env = await createServiceEnv();
  app = createApiApp(env.services, { logger: { error: () => undefined } });
  for (const p of [A, B, C]) tokens[p] = (await env.services.tokens.create(p)).token;
  tokens.userB = (await env.services.tokens.create(B, { scope: 'user' })).token;
});
afterAll(async () => env?.close());

async function call(project: string, method: string, path: string, body?: unknown, token = tokens[project]!) {
  const headers: Record<string, string> = { 'X-Auth-Token': token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await app.request(`/v2/${project}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const SHARING = '/os-vendor-backup-sharing';

async function ownerBackup(over: Parameters<typeof backupRecord>[1] = {}) {
  const rec = backupRecord(A, { backupId: crypto.randomUUID(), ...over });
  await env.stores.backups.createBackup(rec);
  return rec;
}

describe('sharing a backup', () => {
  it('creates one share per project, in the reference shape, with VBS times and v4 ids', async () => {
    const rec = await ownerBackup();
    const res = await call(A, 'POST', SHARING, { shared: { backup_id: rec.backupId, to_project_ids: [B, C, B] } });
    expect(res.status).toBe(200);
    expect(res.body.shared).toHaveLength(2);
    for (const s of res.body.shared) {
      expect(Object.keys(s).sort()).toEqual(['backup_id', 'created_at', 'deleted', 'deleted_at', 'from_project_id', 'id', 'to_project_id', 'updated_at']);
      expect(s).toMatchObject({ backup_id: rec.backupId, from_project_id: A, deleted: null, deleted_at: null });
      expect(s.id).toMatch(UUID_V4);
      expect(s.created_at).toMatch(VBS_TIME_PATTERN);
      expect(s.updated_at).toBe(s.created_at);
    }
    expect(res.body.shared.map((s: { to_project_id: string }) => s.to_project_id).sort()).toEqual([B, C].sort());

    // The owner's list, with the backup inside; the receiver's with share_to_me; count agrees with both.
    const mine = await call(A, 'GET', `${SHARING}/detail?backup_id=${rec.backupId}`);
    expect(mine.status).toBe(200);
    expect(mine.body.shared).toHaveLength(2);
    expect(mine.body.shared[0].backup).toMatchObject({ id: rec.backupId, status: 'available', 'os-bak-tenant-attr:tenant_id': A, 'os-openvbs-bak-share-attr:shared_to_me': false });
    expect(mine.body.shared[0].backup.created_at).toMatch(VBS_TIME_PATTERN);
    expect((await call(A, 'GET', `${SHARING}/count?backup_id=${rec.backupId}`)).body).toEqual({ count: 2 });
    const toB = await call(B, 'GET', `${SHARING}/detail?share_to_me=true`);
    expect(toB.body.shared.map((s: { backup_id: string }) => s.backup_id)).toContain(rec.backupId);
    const shareToB = toB.body.shared.find((s: { backup_id: string }) => s.backup_id === rec.backupId);
    expect(shareToB.backup['os-openvbs-bak-share-attr:shared_to_me']).toBe(true);
    expect(shareToB.backup.links[0].href).toContain(`/v2/${B}/backups/${rec.backupId}`);
    // B made no shares.
    expect((await call(B, 'GET', `${SHARING}/count`)).body).toEqual({ count: 0 });

    // Show: the owner and the receiver see it; a third project does not.
    const shown = await call(B, 'GET', `${SHARING}/${shareToB.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body.shared).toMatchObject({ id: shareToB.id, backup_id: rec.backupId, from_project_id: A, to_project_id: B, backup: { id: rec.backupId } });
    expect((await call(A, 'GET', `${SHARING}/${shareToB.id}`)).status).toBe(200);
    const other = projectId();
    tokens[other] = (await env.services.tokens.create(other)).token;
    expect((await call(other, 'GET', `${SHARING}/${shareToB.id}`)).body.error.code).toBe('OpenVBS.0404');
  });

  it('refuses what the reference and our rules refuse, with their codes', async () => {
    const rec = await ownerBackup();
    const share = (body: unknown, project = A) => call(project, 'POST', SHARING, body);
    expect((await share({ shared: { backup_id: rec.backupId } })).body.error.code).toBe('VolumeBackup.0002');
    expect((await share({ shared: { backup_id: rec.backupId, to_project_ids: [] } })).body.error.code).toBe('OpenVBS.1901');
    expect((await share({ shared: { backup_id: rec.backupId, to_project_ids: [A] } })).body.error.code).toBe('OpenVBS.1901');
    expect((await share({ shared: { backup_id: rec.backupId, to_project_ids: ['not a project!'] } })).body.error.code).toBe('OpenVBS.1901');
    const many = Array.from({ length: 11 }, () => projectId());
    expect((await share({ shared: { backup_id: rec.backupId, to_project_ids: many } })).body.error.code).toBe('OpenVBS.1901');
    const missing = await share({ shared: { backup_id: crypto.randomUUID(), to_project_ids: [B] } });
    expect([missing.status, missing.body.error.code]).toEqual([404, 'OpenVBS.0404']);

    const creating = await ownerBackup({ status: 'creating' });
    const notAvailable = await share({ shared: { backup_id: creating.backupId, to_project_ids: [B] } });
    expect([notAvailable.status, notAvailable.body.error.code]).toEqual([409, 'OpenVBS.1902']);
    const ofServer = await ownerBackup({ extra: { ST: 1, serverBackupId: 'cp-1', tags: [] } });
    expect((await share({ shared: { backup_id: ofServer.backupId, to_project_ids: [B] } })).body.error.code).toBe('OpenVBS.1902');

    expect((await share({ shared: { backup_id: rec.backupId, to_project_ids: [B] } })).status).toBe(200);
    // Shared with B already: nothing is shared with C either.
    const again = await share({ shared: { backup_id: rec.backupId, to_project_ids: [C, B] } });
    expect([again.status, again.body.error.code]).toEqual([409, 'OpenVBS.1905']);
    expect((await call(A, 'GET', `${SHARING}/count?backup_id=${rec.backupId}`)).body.count).toBe(1);
    // The receiver cannot share it on.
    const onward = await share({ shared: { backup_id: rec.backupId, to_project_ids: [C] } }, B);
    expect([onward.status, onward.body.error.code]).toEqual([403, 'OpenVBS.1903']);
  });

  it('shows a shared backup to the receiver, who may not restore it in place or delete it; the owner may not delete it while shared', async () => {
    const rec = await ownerBackup({ name: 'to-share' });
    const made = (await call(A, 'POST', SHARING, { shared: { backup_id: rec.backupId, to_project_ids: [B] } })).body.shared[0];

    const list = await call(B, 'GET', '/backups/detail?name=to-share');
    expect(list.body.backups.map((b: { id: string }) => b.id)).toEqual([rec.backupId]);
    expect(list.body.backups[0]).toMatchObject({ 'os-bak-tenant-attr:tenant_id': A, 'os-openvbs-bak-share-attr:shared_to_me': true });
    expect((await call(B, 'GET', '/backups')).body.backups.map((b: { id: string }) => b.id)).toContain(rec.backupId);
    // A user token of B reaches shares and shared backups too.
    expect((await call(B, 'GET', `/backups/${rec.backupId}`, undefined, tokens.userB)).status).toBe(200);
    expect((await call(B, 'GET', `${SHARING}/detail?share_to_me=true`, undefined, tokens.userB)).status).toBe(200);

    const target = await env.services.volumes.create(B, { name: 'b-target', sizeBytes: 2 * GIB });
    for (const path of [`/cloudbackups/${rec.backupId}/restore`, `/backups/${rec.backupId}/restore`]) {
      const res = await call(B, 'POST', path, { restore: { volume_id: target.volumeId } });
      expect([res.status, res.body.error.code]).toEqual([403, 'OpenVBS.1903']);
    }
    for (const [method, path] of [['DELETE', `/backups/${rec.backupId}`], ['POST', `/cloudbackups/${rec.backupId}`]] as const) {
      const res = await call(B, method, path);
      expect([res.status, res.body.error.code]).toEqual([403, 'OpenVBS.1903']);
    }
    // Only the owner removes the share.
    expect((await call(B, 'DELETE', `${SHARING}/${made.id}`)).body.error.code).toBe('OpenVBS.1903');

    const ownerDelete = await call(A, 'DELETE', `/backups/${rec.backupId}`);
    expect([ownerDelete.status, ownerDelete.body.error.code]).toEqual([409, 'OpenVBS.1904']);
    expect((await env.stores.backups.getBackup(A, rec.backupId))?.status).toBe('available');
    expect(await env.services.sharing.isShared(A, rec.backupId)).toBe(true);

    const removed = await call(A, 'DELETE', `${SHARING}/${made.id}`);
    expect(removed.status).toBe(200);
    expect(await env.services.sharing.isShared(A, rec.backupId)).toBe(false);
    expect((await call(B, 'GET', `/backups/${rec.backupId}`)).status).toBe(404);
    expect((await call(B, 'GET', '/backups/detail?name=to-share')).body.backups).toEqual([]);
    expect((await call(A, 'DELETE', `${SHARING}/${made.id}`)).status).toBe(404);
    expect((await call(A, 'DELETE', `/backups/${rec.backupId}`)).status).toBe(202);
  });

  it('removes every share of a backup with is_backup_id=true', async () => {
    const rec = await ownerBackup();
    await call(A, 'POST', SHARING, { shared: { backup_id: rec.backupId, to_project_ids: [B, C] } });
    expect((await call(B, 'DELETE', `${SHARING}/${rec.backupId}?is_backup_id=true`)).body.error.code).toBe('OpenVBS.1903');
    expect((await call(A, 'DELETE', `${SHARING}/${rec.backupId}?is_backup_id=true`)).status).toBe(200);
    expect((await call(A, 'GET', `${SHARING}/count?backup_id=${rec.backupId}`)).body.count).toBe(0);
    expect((await call(A, 'DELETE', `${SHARING}/${crypto.randomUUID()}?is_backup_id=true`)).status).toBe(404);
  });

  it('filters, sorts and pages the share list, with a next link', async () => {
    const owner = projectId();
    tokens[owner] = (await env.services.tokens.create(owner)).token;
    const names = ['alpha-one', 'beta-two', 'alpha-three'];
    for (const name of names) {
      const rec = backupRecord(owner, { backupId: crypto.randomUUID(), name });
      await env.stores.backups.createBackup(rec);
      await call(owner, 'POST', SHARING, { shared: { backup_id: rec.backupId, to_project_ids: [B] } });
    }
    const byName = await call(owner, 'GET', `${SHARING}/detail?sort_key=name&sort_dir=asc`);
    expect(byName.body.shared.map((s: { backup: { name: string } }) => s.backup.name)).toEqual(['alpha-one', 'alpha-three', 'beta-two']);
    expect((await call(owner, 'GET', `${SHARING}/count?name=ALPHA`)).body.count).toBe(2);
    expect((await call(owner, 'GET', `${SHARING}/count?to_project_id=${C}`)).body.count).toBe(0);
    expect((await call(owner, 'GET', `${SHARING}/count?availability_zone=test-az`)).body.count).toBe(3);
    expect((await call(owner, 'GET', `${SHARING}/count?availability_zone=elsewhere`)).body.count).toBe(0);

    const first = await call(owner, 'GET', `${SHARING}/detail?sort_key=name&sort_dir=asc&limit=2`);
    expect(first.body.shared).toHaveLength(2);
    const next = new URL(first.body.shared_links[0].href);
    expect(first.body.shared_links[0].rel).toBe('next');
    expect(next.searchParams.get('marker')).toBe(first.body.shared[1].id);
    const second = await call(owner, 'GET', `${SHARING}/detail?${next.searchParams}`);
    expect(second.body.shared.map((s: { backup: { name: string } }) => s.backup.name)).toEqual(['beta-two']);
    expect(second.body.shared_links).toBeUndefined();
    expect((await call(owner, 'GET', `${SHARING}/detail?sort_key=colour`)).status).toBe(400);
  });
});

describe('backup tags', () => {
  it('shows the tags given at create and filters by key or key=value', async () => {
    const p = projectId();
    tokens[p] = (await env.services.tokens.create(p)).token;
    const prod = backupRecord(p, { extra: { tags: [{ key: 'env', value: 'prod' }, { key: 'team', value: 'db' }] } });
    const test = backupRecord(p, { extra: { tags: [{ key: 'env', value: 'test' }] } });
    const none = backupRecord(p);
    for (const r of [prod, test, none]) await env.stores.backups.createBackup(r);
    const ids = async (query: string) => (await call(p, 'GET', `/backups/detail?${query}`)).body.backups.map((b: { id: string }) => b.id).sort();

    const shown = (await call(p, 'GET', `/backups/${prod.backupId}`)).body.backup;
    expect(shown.tags).toEqual([{ key: 'env', value: 'prod' }, { key: 'team', value: 'db' }]);
    expect((await call(p, 'GET', `/backups/${none.backupId}`)).body.backup.tags).toEqual([]);
    expect(await ids('tags=env')).toEqual([prod.backupId, test.backupId].sort());
    expect(await ids('tags=env=prod')).toEqual([prod.backupId]);
    expect(await ids('tags=env=prod,team')).toEqual([prod.backupId]);
    expect(await ids('tags=env=test&tags=team')).toEqual([]);
    expect(await ids(`tags=${encodeURIComponent('env=test')}`)).toEqual([test.backupId]);
    expect((await call(p, 'GET', '/backups?tags==prod')).body.error.code).toBe('OpenVBS.0400');

    // Tags given at create reach the workflow (it stores them with the backup).
    const vol = await env.services.volumes.create(p, { name: 'tagged', sizeBytes: GIB });
    const res = await call(p, 'POST', '/cloudbackups', { backup: { volume_id: vol.volumeId, name: 'tagged', tags: [{ key: 'env', value: 'prod' }] } });
    expect(res.status).toBe(200);
    expect(env.workflows.last().input).toMatchObject({ tags: [{ key: 'env', value: 'prod' }] });
  });

  it('keeps the tag filter in the next-page link', async () => {
    const p = projectId();
    tokens[p] = (await env.services.tokens.create(p)).token;
    for (let i = 0; i < 3; i++) await env.stores.backups.createBackup(backupRecord(p, { extra: { tags: [{ key: 'k', value: 'v' }] } }));
    const first = await call(p, 'GET', '/backups?tags=k=v&limit=2');
    const next = new URL(first.body.backups_links[0].href);
    expect(next.searchParams.getAll('tags')).toEqual(['k=v']);
  });
});

describe('a volume from a backup', () => {
  it('creates the volume and starts the restore job (own backup, then a shared one with the owner in the job)', async () => {
    const rec = await ownerBackup({ sizeBytes: GIB + 4096 });
    const own = await call(A, 'POST', '/volumes', { volume: { name: 'from-own', backup_id: rec.backupId } });
    expect(own.status).toBe(200);
    expect(own.body.volume).toMatchObject({ status: 'restoring', size_bytes: GIB + 4096 });
    expect(env.workflows.last()).toMatchObject({ workflow: 'volume-restore', input: { projectId: A, backupId: rec.backupId, volumeId: own.body.volume.id } });
    const ownJob = await env.stores.jobs.get(A, own.body.job_id);
    expect(ownJob?.entities).toEqual({ backup_id: rec.backupId, volume_id: own.body.volume.id });
    // The backup is being restored: it goes back to available when the (recorded, not run) job would end.
    await env.stores.backups.updateBackup(A, rec.backupId, { status: 'available' }, ['restoring']);

    await call(A, 'POST', SHARING, { shared: { backup_id: rec.backupId, to_project_ids: [B] } });
    const small = await call(B, 'POST', '/volumes', { volume: { name: 'too-small', backup_id: rec.backupId, size: 1 } });
    expect([small.status, small.body.error.code]).toEqual([409, 'OpenVBS.1105']);
    const shared = await call(B, 'POST', '/volumes', { volume: { name: 'from-shared', backup_id: rec.backupId, size: 2 } });
    expect(shared.status).toBe(200);
    expect(shared.body.volume).toMatchObject({ status: 'restoring', size_bytes: 2 * GIB });
    const job = await env.stores.jobs.get(B, shared.body.job_id);
    expect(job?.entities).toEqual({ backup_id: rec.backupId, volume_id: shared.body.volume.id, [BACKUP_PROJECT_ENTITY]: A });
    // The owner's backup is the one being restored.
    expect((await env.stores.backups.getBackup(A, rec.backupId))?.status).toBe('restoring');

    // A busy backup: the new volume is not kept.
    const before = (await env.services.volumes.list(B)).length;
    const busy = await call(B, 'POST', '/volumes', { volume: { name: 'busy', backup_id: rec.backupId } });
    expect([busy.status, busy.body.error.code]).toEqual([409, 'VolumeBackup.0089']);
    expect((await env.services.volumes.list(B)).length).toBe(before);

    // A backup neither own nor shared.
    const foreign = await call(C, 'POST', '/volumes', { volume: { name: 'foreign', backup_id: crypto.randomUUID() } });
    expect([foreign.status, foreign.body.error.code]).toEqual([404, 'OpenVBS.0404']);
    const both = await call(B, 'POST', '/volumes', { volume: { name: 'bad', backup_id: rec.backupId, path: '/tmp/x' } });
    expect(both.body.error.code).toBe('VolumeBackup.0002');
  });

  it('removes the new volume when the restore job cannot start', async () => {
    const rec = await ownerBackup();
    const before = (await env.services.volumes.list(A)).length;
    env.workflows.failNext = new Error('no executions today');
    const res = await call(A, 'POST', '/volumes', { volume: { name: 'unstarted', backup_id: rec.backupId } });
    expect([res.status, res.body.error.code]).toEqual([500, 'VolumeBackup.0014']);
    expect((await env.services.volumes.list(A)).length).toBe(before);
    expect((await env.stores.backups.getBackup(A, rec.backupId))?.status).toBe('available');
  });
});

// Sharing end to end on both backends (the real HTTP API on the local runtime, the state machines run
// in-process, real files): project A shares a backup of a volume encrypted under its own customer key with
// project B; B lists it, creates a volume from it that is bit-exact, and is refused restoring it in place and
// deleting it; A cannot delete it while shared; A's unshare removes it from B's view. B's restore read A's
// chunks under A's key domain: B has no key domain of its own afterwards.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { BACKENDS } from '../support/runtime-env.ts';
import { apiCall } from '../support/api-call.ts';

const MiB = 1024 * 1024;
const SIZE = 20 * MiB + 4096; // several 8 MiB segments and a partial last block

describe.each(BACKENDS)('backup sharing on the local runtime (%s backend)', (backend) => {
  let svc: LocalService;
  let home: string;
  const B = randomBytes(16).toString('hex');
  let tokenB: string;

  const apiA = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, `/v2/${svc.projectId}${path}`, body);
  const apiB = (method: string, path: string, body?: unknown) => apiCall(svc.url, tokenB, method, `/v2/${B}${path}`, body);

  async function waitJob(project: string, token: string, jobId: string, timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await apiCall(svc.url, token, 'GET', `/v1/${project}/jobs/${jobId}`);
      expect(res.status).toBe(200);
      if (res.body.status === 'SUCCESS' || res.body.status === 'FAIL') return res.body;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${res.body.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    process.env.OPENVBS_SEGMENT_BLOCKS = '16';
    home = await mkdtemp(join(tmpdir(), 'openvbs-e2e-sharing-'));
    svc = await startLocalService({ backend, port: 0, home, workers: 1, prefix: `e2es${randomBytes(4).toString('hex')}` });
    tokenB = (await svc.runtime.stores.tokens.issue(B, 'project B', { scope: 'admin' })).token;
  });

  afterAll(async () => {
    await svc?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('B lists the shared backup, creates a bit-exact volume from it, and is refused restore-in-place and delete; A unshares', async () => {
    // A: a volume under its own customer key, backed up.
    const key = await apiCall(svc.url, svc.token, 'POST', `/v1/${svc.projectId}/keys`, { key: { alias: `alias/share-${randomBytes(3).toString('hex')}` } });
    expect(key.status).toBe(201);
    const vol = await apiA('POST', '/volumes', { volume: { name: 'a-data', size_bytes: SIZE, kms_key_id: key.body.key.arn } });
    expect(vol.status).toBe(200);
    await writeDiskImage(vol.body.volume.path, SIZE, 11);
    const sha = await sha256File(vol.body.volume.path);
    const made = await apiA('POST', '/cloudbackups', { backup: { volume_id: vol.body.volume.id, name: 'a-shared', tags: [{ key: 'env', value: 'prod' }] } });
    const job = await waitJob(svc.projectId, svc.token, made.body.job_id);
    expect(job.status).toBe('SUCCESS');
    const backupId: string = job.entities.backup_id;
    expect((await apiA('GET', `/backups/detail?tags=env=prod`)).body.backups.map((b: { id: string }) => b.id)).toEqual([backupId]);

    // A shares it with B.
    const shared = await apiA('POST', '/os-vendor-backup-sharing', { shared: { backup_id: backupId, to_project_ids: [B] } });
    expect(shared.status).toBe(200);
    const shareId: string = shared.body.shared[0].id;

    // B sees it among its backups and its received shares.
    const listed = await apiB('GET', '/backups/detail');
    expect(listed.status).toBe(200);
    const seen = listed.body.backups.find((b: { id: string }) => b.id === backupId);
    expect(seen).toMatchObject({ status: 'available', 'os-bak-tenant-attr:tenant_id': svc.projectId, 'os-openvbs-bak-share-attr:shared_to_me': true, tags: [{ key: 'env', value: 'prod' }] });
    expect((await apiB('GET', '/os-vendor-backup-sharing/count?share_to_me=true')).body.count).toBe(1);

    // B creates a volume from it: restored bit-exact into B's own image.
    const fromBackup = await apiB('POST', '/volumes', { volume: { name: 'b-copy', backup_id: backupId } });
    expect(fromBackup.status).toBe(200);
    expect(fromBackup.body.volume.status).toBe('restoring');
    const restoreJob = await waitJob(B, tokenB, fromBackup.body.job_id);
    expect(restoreJob).toMatchObject({ status: 'SUCCESS', job_type: 'bksRestoreBackup' });
    const copy = (await apiB('GET', `/volumes/${fromBackup.body.volume.id}`)).body.volume;
    expect(copy).toMatchObject({ status: 'available', size_bytes: SIZE });
    expect(copy.path).toContain(B);
    expect(await sha256File(copy.path)).toBe(sha);
    // The owner's backup is available again; B holds no key domain (nothing was copied to it).
    expect((await apiA('GET', `/backups/${backupId}`)).body.backup.status).toBe('available');
    expect(await svc.runtime.stores.backups.getDomain(B, key.body.key.arn)).toBeUndefined();

    // B may not restore it onto an existing volume, nor delete it.
    const restoreInPlace = await apiB('POST', `/cloudbackups/${backupId}/restore`, { restore: { volume_id: copy.id } });
    expect([restoreInPlace.status, restoreInPlace.body.error.code]).toEqual([403, 'OpenVBS.1903']);
    const deleteByB = await apiB('DELETE', `/backups/${backupId}`);
    expect([deleteByB.status, deleteByB.body.error.code]).toEqual([403, 'OpenVBS.1903']);
    // Nor may A delete it while it is shared.
    const deleteByA = await apiA('DELETE', `/backups/${backupId}`);
    expect([deleteByA.status, deleteByA.body.error.code]).toEqual([409, 'OpenVBS.1904']);

    // A unshares: B no longer sees it (its volume stays B's).
    expect((await apiA('DELETE', `/os-vendor-backup-sharing/${shareId}`)).status).toBe(200);
    expect((await apiB('GET', '/backups/detail')).body.backups.map((b: { id: string }) => b.id)).not.toContain(backupId);
    expect((await apiB('GET', `/backups/${backupId}`)).status).toBe(404);
    expect((await apiB('POST', '/volumes', { volume: { name: 'too-late', backup_id: backupId } })).status).toBe(404);
    expect(await sha256File(copy.path)).toBe(sha);
    // ... and A may delete it now.
    expect((await apiA('DELETE', `/backups/${backupId}`)).status).toBe(202);
  });
});

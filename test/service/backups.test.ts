// The backup service's VBS rules (create, restore, delete, list, show, quota) on real stores (SQLite in
// memory); workflows recorded.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore } from '../../lib/catalog/jobs.ts';
import { BackupService } from '../../lib/service/backups.ts';
import type { ServiceError } from '../../lib/service/errors.ts';
import { GIB } from '../../lib/service/sizes.ts';
import { BackupDeleteInput, VolumeBackupInput, VolumeRestoreInput } from '../../lib/workflows/contracts.ts';
import { backupRecord, createServiceEnv, expectServiceError as expectError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

beforeAll(async () => {
  env = await createServiceEnv();
});
afterAll(async () => env?.close());

async function volume(project: string, name = 'disk', sizeBytes = 2 * GIB) {
  return env.services.volumes.create(project, { name, sizeBytes });
}

describe('create backup', () => {
  it('locks the volume, creates an INIT job and starts the volume-backup workflow', async () => {
    const p = projectId();
    const vol = await volume(p);
    const { jobId, backupId, name } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'nightly-1', description: 'before upgrade', tags: [{ key: 'env', value: 'prod' }] });
    // RFC 4122 version 4, as VBS hands out
    expect(backupId).toMatch(UUID_V4);
    expect(jobId).toMatch(UUID_V4);
    expect(name).toBe('nightly-1');

    const job = (await env.stores.jobs.get(p, jobId))!;
    expect(job).toMatchObject({ jobType: 'bksCreateBackup', status: 'INIT', entities: { backup_id: backupId, volume_id: vol.volumeId } });
    expect(job.executionArn).toContain(jobId);

    const locked = (await env.stores.volumes.get(p, vol.volumeId))!;
    expect(locked).toMatchObject({ status: 'backing-up', lockJobId: jobId, statusBeforeLock: 'available' });

    const call = env.workflows.last();
    expect(call.workflow).toBe('volume-backup');
    expect(call.name).toBe(jobId);
    expect(VolumeBackupInput.parse(call.input)).toEqual({
      projectId: p,
      jobId,
      backupId,
      volumeId: vol.volumeId,
      name: 'nightly-1',
      description: 'before upgrade',
      tags: [{ key: 'env', value: 'prod' }],
    });
    // the catalog item comes later, from the workflow's prepare step
    await expectError(env.services.backups.get(p, backupId), 404, 'OpenVBS.0404');
  });

  it('refuses a second job on a busy volume (409 VolumeBackup.0012) and starts nothing', async () => {
    const p = projectId();
    const vol = await volume(p);
    await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'first' });
    const calls = env.workflows.calls.length;
    await expectError(env.services.backups.create(p, { volumeId: vol.volumeId, name: 'second' }), 409, 'VolumeBackup.0012');
    expect(env.workflows.calls.length).toBe(calls);
  });

  it('lets go of a lock whose job has ended, never of one whose job still runs', async () => {
    const p = projectId();
    const vol = await volume(p);
    const { jobId } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'lost' });
    await env.stores.jobs.update(p, jobId, { status: 'RUNNING' });
    await expectError(env.services.backups.create(p, { volumeId: vol.volumeId, name: 'blocked' }), 409, 'VolumeBackup.0012');
    // the job ended, but its failure path never released the volume (e.g. a lost invocation)
    await env.stores.jobs.update(p, jobId, { status: 'FAIL', endTime: new Date().toISOString(), failReason: 'lost' });
    expect((await env.stores.volumes.get(p, vol.volumeId))!.lockJobId).toBe(jobId);
    const next = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'next' });
    expect((await env.stores.volumes.get(p, vol.volumeId))!.lockJobId).toBe(next.jobId);
  });

  it('lets only one of two concurrent requests lock the volume', async () => {
    const p = projectId();
    const vol = await volume(p);
    const results = await Promise.allSettled([1, 2, 3].map((i) => env.services.backups.create(p, { volumeId: vol.volumeId, name: `race-${i}` })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as ServiceError).code).toBe('VolumeBackup.0012');
  });

  it('backs up an in-use volume and passes FullBackup on', async () => {
    const p = projectId();
    const vol = await volume(p);
    await env.stores.volumes.lock(p, vol.volumeId, 'attach', 'in-use', ['available']);
    await env.stores.volumes.release(p, vol.volumeId, 'attach', 'in-use');
    const { jobId } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'hot', forceFull: true });
    expect(VolumeBackupInput.parse(env.workflows.last().input).forceFull).toBe(true);
    await env.stores.volumes.release(p, vol.volumeId, jobId);
    expect((await env.stores.volumes.get(p, vol.volumeId))!.status).toBe('in-use');
  });

  it('applies the VBS name and description rules (tags: below)', async () => {
    const p = projectId();
    const vol = await volume(p);
    const create = (over: Record<string, unknown>) => env.services.backups.create(p, { volumeId: vol.volumeId, name: 'ok', ...over });
    await expectError(create({ name: 'autobk_daily' }), 400, 'VolumeBackup.0005');
    await expectError(create({ name: 'Auto-1' }), 400, 'VolumeBackup.0005');
    await expectError(create({ name: 'x'.repeat(65) }), 400, 'VolumeBackup.0003');
    await expectError(create({ name: 'has space' }), 400, 'VolumeBackup.0004');
    await expectError(create({ name: '' }), 400, 'VolumeBackup.0004');
    await expectError(create({ description: 'a <b>' }), 400, 'VolumeBackup.0006');
    await expectError(create({ description: 'd'.repeat(256) }), 400, 'VolumeBackup.0006');
    // none of these locked the volume
    expect((await env.stores.volumes.get(p, vol.volumeId))!.lockJobId).toBeUndefined();
    // unicode letters, digits, _ and - are fine; 64 characters are fine
    await env.services.backups.create(p, { volumeId: vol.volumeId, name: `Daten_ü-${'9'.repeat(56)}` });
  });

  it('answers a missing volume as not found (404 OpenVBS.0404, as the volume itself answers) and one in error VolumeBackup.0012', async () => {
    const p = projectId();
    await expectError(env.services.backups.create(p, { volumeId: 'nope', name: 'x' }), 404, 'OpenVBS.0404');
    await expectError(env.services.backups.create(p, { volumeId: '../../etc', name: 'x' }), 404, 'OpenVBS.0404');
    const vol = await volume(p);
    await env.stores.volumes.lock(p, vol.volumeId, 'j', 'restoring', ['available']);
    await env.stores.volumes.release(p, vol.volumeId, 'j', 'error');
    await expectError(env.services.backups.create(p, { volumeId: vol.volumeId, name: 'x' }), 409, 'VolumeBackup.0012');
  });

  it('does not see another project’s volume', async () => {
    const vol = await volume(projectId());
    await expectError(env.services.backups.create(projectId(), { volumeId: vol.volumeId, name: 'x' }), 404, 'OpenVBS.0404');
  });

  it('names a backup created without a name after its id', async () => {
    const p = projectId();
    const vol = await volume(p);
    const { backupId, name } = await env.services.backups.create(p, { volumeId: vol.volumeId, forceFull: true });
    expect(name).toBe(`backup-${backupId.slice(0, 8)}`);
    expect(VolumeBackupInput.parse(env.workflows.last().input)).toMatchObject({ backupId, name, forceFull: true });
  });

  it('releases the volume and fails the job when the workflow cannot start', async () => {
    const p = projectId();
    const vol = await volume(p);
    env.workflows.failNext = new Error('ServiceUnavailable');
    await expectError(env.services.backups.create(p, { volumeId: vol.volumeId, name: 'doomed' }), 500, 'VolumeBackup.0014');
    const after = (await env.stores.volumes.get(p, vol.volumeId))!;
    expect(after.status).toBe('available');
    expect(after.lockJobId).toBeUndefined();
    // and the volume can be backed up right away
    const { jobId } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'retry' });
    expect((await env.stores.jobs.get(p, jobId))!.status).toBe('INIT');
  });

  it('releases the volume and starts nothing when the job cannot be recorded', async () => {
    const p = projectId();
    const vol = await volume(p);
    const jobs: JobStore = Object.assign(Object.create(env.stores.jobs) as JobStore, {
      create: async () => {
        throw new Error('table unavailable');
      },
    });
    const service = new BackupService({ backups: env.stores.backups, jobs, volumes: env.stores.volumes, workflows: env.workflows });
    const calls = env.workflows.calls.length;
    await expect(service.create(p, { volumeId: vol.volumeId, name: 'unrecorded' })).rejects.toThrow('table unavailable');
    expect(env.workflows.calls.length).toBe(calls);
    expect((await env.stores.volumes.get(p, vol.volumeId))!).toMatchObject({ status: 'available' });
    expect((await env.stores.volumes.get(p, vol.volumeId))!.lockJobId).toBeUndefined();
  });
});

describe('restore', () => {
  it('checks backup status, target existence, error state, capacity and attachment', async () => {
    const p = projectId();
    const backup = backupRecord(p, { sizeBytes: 2 * GIB });
    await env.stores.backups.createBackup(backup);
    const creating = backupRecord(p, { status: 'creating' });
    await env.stores.backups.createBackup(creating);
    const target = await volume(p, 'target', 2 * GIB);

    await expectError(env.services.backups.restore(p, 'no-such-backup', target.volumeId), 404, 'OpenVBS.0404');
    await expectError(env.services.backups.restore(p, creating.backupId, target.volumeId), 409, 'VolumeBackup.0089');
    await expectError(env.services.backups.restore(p, backup.backupId, 'no-such-volume'), 404, 'OpenVBS.0404');

    const small = await volume(p, 'small', 2 * GIB - 1);
    await expectError(env.services.backups.restore(p, backup.backupId, small.volumeId), 400, 'VolumeBackup.0209');

    const broken = await volume(p, 'broken');
    await env.stores.volumes.lock(p, broken.volumeId, 'j', 'restoring', ['available']);
    await env.stores.volumes.release(p, broken.volumeId, 'j', 'error');
    await expectError(env.services.backups.restore(p, backup.backupId, broken.volumeId), 409, 'VolumeBackup.0205');

    const attached = await volume(p, 'attached');
    await env.stores.volumes.lock(p, attached.volumeId, 'a', 'in-use', ['available']);
    await env.stores.volumes.release(p, attached.volumeId, 'a', 'in-use');
    await expectError(env.services.backups.restore(p, backup.backupId, attached.volumeId), 409, 'VolumeBackup.0012');

    const busy = await volume(p, 'busy');
    await env.services.backups.create(p, { volumeId: busy.volumeId, name: 'running' });
    await expectError(env.services.backups.restore(p, backup.backupId, busy.volumeId), 409, 'VolumeBackup.0012');

    // nothing above changed the backup
    expect((await env.stores.backups.getBackup(p, backup.backupId))!.status).toBe('available');
  });

  it('marks backup and target restoring, creates the job and starts volume-restore', async () => {
    const p = projectId();
    const backup = backupRecord(p, { sizeBytes: GIB });
    await env.stores.backups.createBackup(backup);
    const target = await volume(p, 'target', GIB);
    const res = await env.services.backups.restore(p, backup.backupId, target.volumeId);
    expect(res).toMatchObject({ backupId: backup.backupId, volumeId: target.volumeId, volumeName: 'target' });
    expect((await env.stores.backups.getBackup(p, backup.backupId))!.status).toBe('restoring');
    expect(await env.stores.volumes.get(p, target.volumeId)).toMatchObject({ status: 'restoring', lockJobId: res.jobId });
    expect(await env.stores.jobs.get(p, res.jobId)).toMatchObject({ jobType: 'bksRestoreBackup', status: 'INIT', entities: { backup_id: backup.backupId, volume_id: target.volumeId } });
    expect(env.workflows.last().workflow).toBe('volume-restore');
    expect(VolumeRestoreInput.parse(env.workflows.last().input)).toEqual({ projectId: p, jobId: res.jobId, backupId: backup.backupId, volumeId: target.volumeId });

    // the same backup cannot be restored twice at once; the second target is not left locked
    const other = await volume(p, 'other', GIB);
    await expectError(env.services.backups.restore(p, backup.backupId, other.volumeId), 409, 'VolumeBackup.0089');
    expect((await env.stores.volumes.get(p, other.volumeId))!.lockJobId).toBeUndefined();
  });

  it('puts backup and target back when the workflow cannot start', async () => {
    const p = projectId();
    const backup = backupRecord(p);
    await env.stores.backups.createBackup(backup);
    const target = await volume(p);
    env.workflows.failNext = new Error('throttled');
    await expectError(env.services.backups.restore(p, backup.backupId, target.volumeId), 500, 'VolumeBackup.0014');
    expect((await env.stores.backups.getBackup(p, backup.backupId))!.status).toBe('available');
    expect((await env.stores.volumes.get(p, target.volumeId))!).toMatchObject({ status: 'available' });
    expect((await env.stores.volumes.get(p, target.volumeId))!.lockJobId).toBeUndefined();
  });
});

describe('delete', () => {
  it('deletes available and error backups through the backup-delete workflow', async () => {
    const p = projectId();
    for (const status of ['available', 'error'] as const) {
      const backup = backupRecord(p, { status });
      await env.stores.backups.createBackup(backup);
      const { jobId } = await env.services.backups.delete(p, backup.backupId);
      expect((await env.stores.backups.getBackup(p, backup.backupId))!.status).toBe('deleting');
      expect(await env.stores.jobs.get(p, jobId)).toMatchObject({ jobType: 'bksDeleteBackup', status: 'INIT', entities: { backup_id: backup.backupId, volume_id: backup.volumeId } });
      expect(BackupDeleteInput.parse(env.workflows.last().input)).toEqual({ projectId: p, jobId, backupId: backup.backupId });
    }
  });

  it('refuses other statuses, server-backup members and unknown backups', async () => {
    const p = projectId();
    for (const status of ['creating', 'restoring', 'deleting'] as const) {
      const backup = backupRecord(p, { status });
      await env.stores.backups.createBackup(backup);
      await expectError(env.services.backups.delete(p, backup.backupId), 409, 'OpenVBS.1001');
      expect((await env.stores.backups.getBackup(p, backup.backupId))!.status).toBe(status);
    }
    const member = backupRecord(p, { extra: { ST: 1, serverBackupId: 'sb-1' } });
    await env.stores.backups.createBackup(member);
    await expectError(env.services.backups.delete(p, member.backupId), 409, 'OpenVBS.1002');
    await expectError(env.services.backups.delete(p, 'missing'), 404, 'OpenVBS.0404');
    await expectError(env.services.backups.delete(projectId(), member.backupId), 404, 'OpenVBS.0404');
  });

  it('restores the previous status when the workflow cannot start', async () => {
    const p = projectId();
    const backup = backupRecord(p, { status: 'error', failReason: 'disk vanished' });
    await env.stores.backups.createBackup(backup);
    env.workflows.failNext = new Error('down');
    await expectError(env.services.backups.delete(p, backup.backupId), 500, 'VolumeBackup.0014');
    expect((await env.stores.backups.getBackup(p, backup.backupId))!.status).toBe('error');
  });
});

describe('list, show and quota', () => {
  const p = projectId();
  const ids: string[] = [];

  beforeAll(async () => {
    // 7 backups, oldest first: names, sizes, statuses and volumes vary
    const specs = [
      { name: 'alpha', sizeBytes: 1 * GIB, volumeId: 'vol-a' },
      { name: 'bravo', sizeBytes: 5 * GIB, volumeId: 'vol-a' },
      { name: 'charlie', sizeBytes: 2 * GIB + 1, volumeId: 'vol-b', status: 'error' as const },
      { name: 'delta', sizeBytes: 3 * GIB, volumeId: 'vol-b' },
      { name: 'alpha', sizeBytes: 4 * GIB, volumeId: 'vol-c' },
      { name: 'echo', sizeBytes: 1, volumeId: 'vol-c' },
      { name: 'foxtrot', sizeBytes: GIB, volumeId: 'vol-a', status: 'creating' as const, extra: { jobId: 'job-fox', ST: 0 } },
    ];
    for (const [i, s] of specs.entries()) {
      const rec = backupRecord(p, { ...s, createdAt: new Date(Date.UTC(2026, 1, 1, 10, i)).toISOString() });
      ids.push(rec.backupId);
      await env.stores.backups.createBackup(rec);
    }
    await env.stores.jobs.create({ projectId: p, jobId: 'job-fox', jobType: 'bksCreateBackup', status: 'RUNNING', entities: {}, bytesDone: GIB / 4, bytesTotal: GIB, createdAt: new Date().toISOString() });
    // another project's backup never shows
    await env.stores.backups.createBackup(backupRecord(projectId()));
  });

  const idsOf = (page: { backups: Array<{ record: { backupId: string } }> }) => page.backups.map((b) => b.record.backupId);

  it('lists newest first by default, with filters', async () => {
    expect(idsOf(await env.services.backups.list(p))).toEqual([...ids].reverse());
    expect(idsOf(await env.services.backups.list(p, { name: 'alpha' }))).toEqual([ids[4], ids[0]]);
    expect(idsOf(await env.services.backups.list(p, { status: 'error' }))).toEqual([ids[2]]);
    expect(idsOf(await env.services.backups.list(p, { volumeId: 'vol-a' }))).toEqual([ids[6], ids[1], ids[0]]);
    expect(idsOf(await env.services.backups.list(p, { volumeId: 'vol-a', status: 'available', sortDir: 'asc' }))).toEqual([ids[0], ids[1]]);
    expect(idsOf(await env.services.backups.list(p, { volumeId: 'none' }))).toEqual([]);
  });

  it('sorts by name and size', async () => {
    const byName = await env.services.backups.list(p, { sortKey: 'name', sortDir: 'asc' });
    expect(byName.backups.map((b) => b.record.name)).toEqual(['alpha', 'alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot']);
    const bySize = await env.services.backups.list(p, { sortKey: 'size', sortDir: 'desc' });
    // 5, 4, 3, 2+ GB, then the two 1 GB backups (ties by id, in the same direction), then 1 byte
    const tied = [ids[0]!, ids[6]!].sort().reverse();
    expect(idsOf(bySize)).toEqual([ids[1], ids[4], ids[3], ids[2], ...tied, ids[5]]);
  });

  it('pages with limit, marker and offset', async () => {
    const first = await env.services.backups.list(p, { limit: 3 });
    expect(idsOf(first)).toEqual([ids[6], ids[5], ids[4]]);
    expect(first.nextMarker).toBe(ids[4]);
    const second = await env.services.backups.list(p, { limit: 3, marker: first.nextMarker! });
    expect(idsOf(second)).toEqual([ids[3], ids[2], ids[1]]);
    const third = await env.services.backups.list(p, { limit: 3, marker: second.nextMarker! });
    expect(idsOf(third)).toEqual([ids[0]]);
    expect(third.nextMarker).toBeUndefined();
    expect(idsOf(await env.services.backups.list(p, { offset: 5 }))).toEqual([ids[1], ids[0]]);
    expect(idsOf(await env.services.backups.list(p, { marker: ids[5], offset: 1, limit: 2 }))).toEqual([ids[3], ids[2]]);
    // as OpenStack answers an unknown marker
    await expectError(env.services.backups.list(p, { marker: 'not-a-backup' }), 404, 'OpenVBS.0404');
  });

  it('shows progress of a backup still being created', async () => {
    expect((await env.services.backups.get(p, ids[6]!)).progress).toBe(25);
    expect((await env.services.backups.get(p, ids[0]!)).progress).toBe(100);
    expect((await env.services.backups.get(p, ids[2]!)).progress).toBe(0);
    await expectError(env.services.backups.get(projectId(), ids[0]!), 404, 'OpenVBS.0404');
  });

  it('reports usage against quotas (-1 = unlimited)', async () => {
    expect(await env.services.backups.quota(p)).toEqual([
      { type: 'backups', used: 7, reserved: 0, quota: -1 },
      // 1 + 5 + 3 + 3 + 4 + 1 + 1 GB, each rounded up
      { type: 'backup_gigabytes', used: 18, reserved: 0, quota: -1 },
    ]);
    expect(await env.services.backups.quota(projectId())).toEqual([
      { type: 'backups', used: 0, reserved: 0, quota: -1 },
      { type: 'backup_gigabytes', used: 0, reserved: 0, quota: -1 },
    ]);
  });

  it('enforces the backups and backup_gigabytes quotas on create', async () => {
    const vol = await volume(p, 'quota-disk', 2 * GIB);
    await expectError(env.build({ quotas: { backups: 7 } }).backups.create(p, { volumeId: vol.volumeId, name: 'over' }), 400, 'OpenVBS.1003');
    await expectError(env.build({ quotas: { backupGigabytes: 19 } }).backups.create(p, { volumeId: vol.volumeId, name: 'over' }), 400, 'OpenVBS.1003');
    expect((await env.build({ quotas: { backups: 8 } }).backups.quota(p))[0]).toEqual({ type: 'backups', used: 7, reserved: 0, quota: 8 });
    await env.build({ quotas: { backups: 8, backupGigabytes: 20 } }).backups.create(p, { volumeId: vol.volumeId, name: 'fits' });
  });
});

describe('ids', () => {
  it('still finds backups and jobs recorded under the ids of earlier versions (32 hex digits, a UUID shape without the version)', async () => {
    const p = projectId();
    const hexJob = randomBytes(16).toString('hex');
    await env.stores.jobs.create({ projectId: p, jobId: hexJob, jobType: 'bksCreateBackup', status: 'SUCCESS', entities: {}, bytesDone: 0, bytesTotal: 0, createdAt: '2025-01-01T00:00:00.000Z' });
    expect((await env.services.jobs.get(p, hexJob)).jobId).toBe(hexJob);

    const target = await volume(p, 'old-ids-target', 2 * GIB);
    const oldShape = backupRecord(p, { backupId: '0123abcd-0123-0123-0123-0123456789ab', sizeBytes: GIB });
    const hex = backupRecord(p, { backupId: randomBytes(16).toString('hex'), sizeBytes: GIB });
    for (const r of [oldShape, hex]) await env.stores.backups.createBackup(r);
    expect((await env.services.backups.get(p, oldShape.backupId)).record.backupId).toBe(oldShape.backupId);
    expect((await env.services.backups.restore(p, oldShape.backupId, target.volumeId)).backupId).toBe(oldShape.backupId);
    await env.services.backups.delete(p, hex.backupId);
    expect((await env.stores.backups.getBackup(p, hex.backupId))!.status).toBe('deleting');
  });
});

describe('tags', () => {
  it('keeps each key once, with the last value given for it, in the order first given', async () => {
    const p = projectId();
    const vol = await volume(p);
    const tags = [
      { key: 'env', value: 'test' },
      { key: 'team', value: 'a' },
      { key: 'env', value: 'prod' },
    ];
    await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'tagged', tags });
    expect(VolumeBackupInput.parse(env.workflows.last().input).tags).toEqual([
      { key: 'env', value: 'prod' },
      { key: 'team', value: 'a' },
    ]);
  });

  it('refuses more than 10 tags, an empty or long key and a long value, counting characters (OpenVBS.1004)', async () => {
    const p = projectId();
    const vol = await volume(p);
    const create = (tags: Array<{ key: string; value: string }>) => env.services.backups.create(p, { volumeId: vol.volumeId, name: 'tags', tags });
    for (const tags of [
      Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: '' })),
      [{ key: '', value: 'v' }],
      [{ key: 'k'.repeat(37), value: 'v' }],
      [{ key: 'k', value: 'v'.repeat(44) }],
    ]) {
      await expectError(create(tags), 400, 'OpenVBS.1004');
    }
    // 36 and 43 astral characters are 72 and 86 UTF-16 units: still within the limits
    await create([{ key: '🙂'.repeat(36), value: '🙂'.repeat(43) }]);
  });
});

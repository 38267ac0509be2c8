// The catalog stores' behaviour, on both table adapters. Each test uses a project of its own.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupStateError } from '../../lib/catalog/backups.ts';
import type { JobRecord } from '../../lib/catalog/jobs.ts';
import { createCatalogStores } from '../../lib/catalog/stores.ts';
import type { CatalogStores } from '../../lib/catalog/stores.ts';
import { hashToken } from '../../lib/catalog/tokens.ts';
import { PathTakenError, VolumeLockedError, registeredPathKey } from '../../lib/catalog/volumes.ts';
import type { VolumeRecord } from '../../lib/catalog/volumes.ts';
import type { BackupRecord, KeyDomainRecord } from '../../lib/engine/ports.ts';
import { TABLE_ADAPTERS } from './adapters.ts';
import type { Opened } from './adapters.ts';
import type { Table } from '../../lib/catalog/table.ts';

const newProject = () => `proj-${randomUUID()}`;

function backup(projectId: string, backupId: string, overrides: Partial<BackupRecord> = {}): BackupRecord {
  return {
    projectId,
    backupId,
    volumeId: 'vol-1',
    name: `backup ${backupId}`,
    status: 'creating',
    sizeBytes: 1 << 20,
    blockSize: 512 * 1024,
    segmentBlocks: 2,
    segmentCount: 1,
    domainId: 'dom-1',
    kmsKeyId: 'arn:aws:kms:us-east-1:000000000000:key/service',
    customerKey: false,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    manifestPrefix: `manifests/${projectId}/${backupId}/`,
    ...overrides,
  };
}

function job(projectId: string, jobId: string, overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    projectId,
    jobId,
    jobType: 'bksCreateBackup',
    status: 'INIT',
    entities: { backup_id: 'b-1' },
    bytesDone: 0,
    bytesTotal: 1000,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

function volume(projectId: string, volumeId: string, overrides: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    projectId,
    volumeId,
    name: volumeId,
    sizeBytes: 1 << 20,
    path: `/images/${volumeId}.img`,
    managed: true,
    status: 'available',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

describe.each(TABLE_ADAPTERS)('catalog stores on $name', (adapter) => {
  let opened: Opened<Table>;
  let stores: CatalogStores;

  beforeAll(async () => {
    opened = await adapter.open();
    stores = createCatalogStores(opened.subject);
  });
  afterAll(async () => {
    await opened?.close();
  });

  describe('backups', () => {
    it('creates once, reads back and updates only from the expected status', async () => {
      const p = newProject();
      const rec = backup(p, 'b-1', { extra: { tags: { a: '1' } } });
      await stores.backups.createBackup(rec);
      await expect(stores.backups.createBackup(rec)).rejects.toThrow();
      expect(await stores.backups.getBackup(p, 'b-1')).toEqual(rec);
      expect(await stores.backups.getBackup(p, 'missing')).toBeUndefined();

      const updated = await stores.backups.updateBackup(p, 'b-1', { status: 'available', completedAt: '2026-01-02T00:00:00.000Z' }, ['creating']);
      expect(updated).toMatchObject({ status: 'available', completedAt: '2026-01-02T00:00:00.000Z', volumeId: 'vol-1' });
      expect(updated.updatedAt).not.toBe(rec.updatedAt);
      expect(await stores.backups.getBackup(p, 'b-1')).toEqual(updated);

      await expect(stores.backups.updateBackup(p, 'b-1', { status: 'error' }, ['creating'])).rejects.toBeInstanceOf(BackupStateError);
      await expect(stores.backups.updateBackup(p, 'missing', { status: 'error' })).rejects.toBeInstanceOf(BackupStateError);
      expect(await stores.backups.getBackup(p, 'missing')).toBeUndefined();
      expect((await stores.backups.getBackup(p, 'b-1'))!.status).toBe('available');

      // An undefined field in the patch removes it; the ids cannot be patched.
      const cleared = await stores.backups.updateBackup(p, 'b-1', { completedAt: undefined, backupId: 'other' });
      expect(cleared.completedAt).toBeUndefined();
      expect(cleared.backupId).toBe('b-1');
    });

    it('finds the latest backup of a volume by status and key domain', async () => {
      const p = newProject();
      await stores.backups.createBackup(backup(p, 'b-1', { createdAt: '2026-01-01T00:00:00.000Z', status: 'available', domainId: 'd-a' }));
      await stores.backups.createBackup(backup(p, 'b-3', { createdAt: '2026-01-03T00:00:00.000Z', status: 'error', domainId: 'd-a' }));
      await stores.backups.createBackup(backup(p, 'b-2', { createdAt: '2026-01-02T00:00:00.000Z', status: 'available', domainId: 'd-b' }));
      await stores.backups.createBackup(backup(p, 'b-4', { createdAt: '2026-01-04T00:00:00.000Z', status: 'available', volumeId: 'vol-2' }));
      expect((await stores.backups.latestBackup(p, 'vol-1', 'available'))?.backupId).toBe('b-2');
      expect((await stores.backups.latestBackup(p, 'vol-1', 'available', 'd-a'))?.backupId).toBe('b-1');
      expect((await stores.backups.latestBackup(p, 'vol-1', 'error'))?.backupId).toBe('b-3');
      expect(await stores.backups.latestBackup(p, 'vol-1', 'deleting')).toBeUndefined();
      expect(await stores.backups.latestBackup(newProject(), 'vol-1', 'available')).toBeUndefined();
      const latest = await stores.backups.latestBackup(p, 'vol-2', 'available');
      expect(latest).toEqual(backup(p, 'b-4', { createdAt: '2026-01-04T00:00:00.000Z', status: 'available', volumeId: 'vol-2' }));
    });

    it('lists a project’s backups, or one volume’s oldest first', async () => {
      const p = newProject();
      await stores.backups.createBackup(backup(p, 'b-a', { createdAt: '2026-01-02T00:00:00.000Z' }));
      await stores.backups.createBackup(backup(p, 'b-b', { createdAt: '2026-01-01T00:00:00.000Z' }));
      await stores.backups.createBackup(backup(p, 'b-c', { volumeId: 'vol-2' }));
      await stores.volumes.create(volume(p, 'vol-1'));
      await stores.backups.createBackup(backup(newProject(), 'b-x'));
      expect((await stores.backups.listBackups(p)).map((b) => b.backupId).sort()).toEqual(['b-a', 'b-b', 'b-c']);
      expect((await stores.backups.listBackups(p, { volumeId: 'vol-1' })).map((b) => b.backupId)).toEqual(['b-b', 'b-a']);
      expect(await stores.backups.listBackups(p, { volumeId: 'vol-3' })).toEqual([]);
      expect(await stores.backups.listBackups(newProject())).toEqual([]);
    });
  });

  describe('key domains', () => {
    it('keeps the first domain stored for (project, key), also when two race', async () => {
      const p = newProject();
      const domain = (domainId: string): KeyDomainRecord => ({
        projectId: p,
        domainId,
        kmsKeyId: 'key-1',
        wrappedKey: Buffer.from(domainId),
        createdAt: '2026-01-01T00:00:00.000Z',
      });
      expect(await stores.backups.getDomain(p, 'key-1')).toBeUndefined();
      const results = await Promise.all(['d-1', 'd-2', 'd-3', 'd-4'].map((id) => stores.backups.putDomainIfAbsent(domain(id))));
      const stored = await stores.backups.getDomain(p, 'key-1');
      expect(stored).toBeDefined();
      expect(Buffer.isBuffer(stored!.wrappedKey)).toBe(true);
      expect(stored!.wrappedKey).toEqual(Buffer.from(stored!.domainId));
      for (const result of results) expect(result).toEqual(stored);
      expect(await stores.backups.putDomainIfAbsent(domain('d-5'))).toEqual(stored);
    });
  });

  describe('jobs', () => {
    it('creates, reads, updates and never reopens an ended job', async () => {
      const p = newProject();
      await stores.jobs.create(job(p, 'j-1'));
      await expect(stores.jobs.create(job(p, 'j-1'))).rejects.toThrow();
      expect(await stores.jobs.update(p, 'j-1', { status: 'RUNNING', beginTime: 't1', errorCode: undefined })).toBe(true);
      expect(await stores.jobs.get(p, 'j-1')).toMatchObject({ status: 'RUNNING', beginTime: 't1' });
      expect(await stores.jobs.update(p, 'j-1', { status: 'FAIL', failReason: 'boom', endTime: 't2' })).toBe(true);
      expect(await stores.jobs.update(p, 'j-1', { status: 'RUNNING' })).toBe(false);
      expect(await stores.jobs.update(p, 'j-1', { status: 'SUCCESS' })).toBe(false);
      expect(await stores.jobs.get(p, 'j-1')).toMatchObject({ status: 'FAIL', failReason: 'boom', endTime: 't2' });
      expect(await stores.jobs.update(p, 'missing', { status: 'RUNNING' })).toBe(false);
      expect(await stores.jobs.get(p, 'missing')).toBeUndefined();
    });

    it('returns records without the table’s key attributes', async () => {
      const p = newProject();
      const rec = job(p, 'j-1');
      await stores.jobs.create(rec);
      expect(await stores.jobs.get(p, 'j-1')).toEqual(rec);
    });

    it('sums parallel progress exactly', async () => {
      const p = newProject();
      await stores.jobs.create(job(p, 'j-1'));
      // Parallel adds on SQLite (atomic across connections). moto applies UpdateItem without a lock, so parallel
      // ADDs sometimes lose one there under load (DynamoDB itself documents ADD as atomic): on the emulator the
      // adds go one after another and show only that they accumulate.
      const add = () => stores.jobs.addProgress(p, 'j-1', 50);
      if (adapter.name === 'DynamoTable') for (let i = 0; i < 20; i++) await add();
      else await Promise.all(Array.from({ length: 20 }, add));
      expect((await stores.jobs.get(p, 'j-1'))!.bytesDone).toBe(1000);
      await expect(stores.jobs.addProgress(p, 'missing', 1)).rejects.toThrow();
    });

    it('lists a project’s jobs and the unfinished jobs of every project', async () => {
      const [p1, p2] = [newProject(), newProject()];
      await stores.jobs.create(job(p1, 'j-init', { createdAt: '2020-01-01T00:00:01.000Z' }));
      await stores.jobs.create(job(p1, 'j-running', { createdAt: '2020-01-01T00:00:02.000Z' }));
      await stores.jobs.create(job(p1, 'j-done', { createdAt: '2020-01-01T00:00:03.000Z' }));
      await stores.jobs.create(job(p2, 'j-other', { createdAt: '2020-01-01T00:00:04.000Z', status: 'RUNNING' }));
      await stores.jobs.create(job(p2, 'j-created-ended', { createdAt: '2020-01-01T00:00:05.000Z', status: 'SUCCESS' }));
      await stores.jobs.update(p1, 'j-running', { status: 'RUNNING' });
      await stores.jobs.update(p1, 'j-done', { status: 'RUNNING' });
      await stores.jobs.update(p1, 'j-done', { status: 'SUCCESS' });

      expect((await stores.jobs.list(p1)).map((j) => j.jobId).sort()).toEqual(['j-done', 'j-init', 'j-running']);
      expect(await stores.jobs.list(newProject())).toEqual([]);
      // Other suites' jobs may be open in the same table: look at these projects only.
      const unfinished = (await stores.jobs.listUnfinished()).filter((j) => j.projectId === p1 || j.projectId === p2);
      expect(unfinished.map((j) => [j.jobId, j.status])).toEqual([
        ['j-init', 'INIT'],
        ['j-running', 'RUNNING'],
        ['j-other', 'RUNNING'],
      ]);
      expect(unfinished[0]).toEqual(await stores.jobs.get(p1, 'j-init'));
      await stores.jobs.update(p1, 'j-init', { status: 'FAIL' });
      expect((await stores.jobs.listUnfinished()).some((j) => j.jobId === 'j-init' && j.projectId === p1)).toBe(false);
    });
  });

  describe('volumes', () => {
    it('creates, reads, lists and deletes', async () => {
      const p = newProject();
      await stores.volumes.create(volume(p, 'vol-b'));
      await stores.volumes.create(volume(p, 'vol-a', { kmsKeyId: 'key-1', managed: false }));
      await expect(stores.volumes.create(volume(p, 'vol-a'))).rejects.toThrow();
      await stores.jobs.create(job(p, 'j-1'));
      expect(await stores.volumes.get(p, 'vol-a')).toEqual(volume(p, 'vol-a', { kmsKeyId: 'key-1', managed: false }));
      expect((await stores.volumes.list(p)).map((v) => v.volumeId)).toEqual(['vol-a', 'vol-b']);
      expect(await stores.volumes.delete(p, 'vol-a')).toBe(true);
      expect(await stores.volumes.delete(p, 'vol-a')).toBe(false);
      expect((await stores.volumes.list(p)).map((v) => v.volumeId)).toEqual(['vol-b']);
    });

    it('locks for one job at a time and releases to the status before the lock', async () => {
      const p = newProject();
      await stores.volumes.create(volume(p, 'vol-1', { status: 'in-use' }));
      const locked = await stores.volumes.lock(p, 'vol-1', 'j-1', 'backing-up', ['available', 'in-use']);
      expect(locked).toMatchObject({ status: 'backing-up', lockJobId: 'j-1', statusBeforeLock: 'in-use' });
      expect(await stores.volumes.lock(p, 'vol-1', 'j-1', 'backing-up', ['available', 'in-use'])).toMatchObject({ lockJobId: 'j-1' });
      await expect(stores.volumes.lock(p, 'vol-1', 'j-2', 'restoring', ['available', 'in-use', 'backing-up'])).rejects.toBeInstanceOf(VolumeLockedError);
      expect(await stores.volumes.delete(p, 'vol-1')).toBe(false);

      await stores.volumes.release(p, 'vol-1', 'j-2');
      expect((await stores.volumes.get(p, 'vol-1'))!.lockJobId).toBe('j-1');
      await stores.volumes.release(p, 'vol-1', 'j-1');
      const released = await stores.volumes.get(p, 'vol-1');
      expect(released).toMatchObject({ status: 'in-use' });
      expect(released!.lockJobId).toBeUndefined();
      expect(released!.statusBeforeLock).toBeUndefined();

      await stores.volumes.lock(p, 'vol-1', 'j-3', 'restoring', ['in-use']);
      await stores.volumes.release(p, 'vol-1', 'j-3', 'error', 'restore cut short');
      expect(await stores.volumes.get(p, 'vol-1')).toMatchObject({ status: 'error', statusReason: 'restore cut short' });
      expect(await stores.volumes.delete(p, 'vol-1')).toBe(true);
    });

    it('lists the locked volumes of every project, and only while they are locked', async () => {
      const [p, q] = [newProject(), newProject()];
      await stores.volumes.create(volume(p, 'vol-1'));
      await stores.volumes.create(volume(q, 'vol-2'));
      await stores.volumes.create(volume(q, 'vol-3'));
      const mine = async () =>
        (await stores.volumes.listLocked())
          .filter((v) => v.projectId === p || v.projectId === q)
          .map((v) => `${v.volumeId}:${v.lockJobId}`)
          .sort();
      expect(await mine()).toEqual([]);
      await stores.volumes.lock(p, 'vol-1', 'j-1', 'backing-up', ['available']);
      await stores.volumes.lock(q, 'vol-2', 'j-2', 'restoring', ['available']);
      expect(await mine()).toEqual(['vol-1:j-1', 'vol-2:j-2']);
      await stores.volumes.release(p, 'vol-1', 'j-1');
      expect(await mine()).toEqual(['vol-2:j-2']);
      expect((await stores.volumes.get(p, 'vol-1'))!.lockJobId).toBeUndefined();
    });

    it('refuses a lock from another status or on a missing volume, and lets exactly one of racing jobs win', async () => {
      const p = newProject();
      await stores.volumes.create(volume(p, 'vol-1', { status: 'error' }));
      await expect(stores.volumes.lock(p, 'vol-1', 'j-1', 'backing-up', ['available'])).rejects.toBeInstanceOf(VolumeLockedError);
      await expect(stores.volumes.lock(p, 'missing', 'j-1', 'backing-up', ['available'])).rejects.toThrow(/not found/);

      await stores.volumes.create(volume(p, 'vol-2'));
      const attempts = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => stores.volumes.lock(p, 'vol-2', `j-${i}`, 'backing-up', ['available'])),
      );
      const won = attempts.filter((a) => a.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const a of attempts) if (a.status === 'rejected') expect(a.reason).toBeInstanceOf(VolumeLockedError);
      const holder = (await stores.volumes.get(p, 'vol-2'))!;
      expect(holder.statusBeforeLock).toBe('available');
      expect((won[0] as PromiseFulfilledResult<VolumeRecord>).value.lockJobId).toBe(holder.lockJobId);
    });

    it('reserves a registered path across projects until its volume is deleted, and keeps its file identity', async () => {
      const [p, q] = [newProject(), newProject()];
      const path = `/roots/${randomUUID()}.img`;
      const identity = { dev: '2049', ino: '18446744073709551615' };
      await stores.volumes.create(volume(p, 'reg-1', { path, managed: false, fileIdentity: identity }));
      expect((await stores.volumes.get(p, 'reg-1'))!.fileIdentity).toEqual(identity);
      await expect(stores.volumes.create(volume(q, 'reg-2', { path, managed: false }))).rejects.toBeInstanceOf(PathTakenError);
      await expect(stores.volumes.create(volume(p, 'reg-3', { path, managed: false }))).rejects.toBeInstanceOf(PathTakenError);
      expect(await stores.volumes.get(q, 'reg-2')).toBeUndefined();
      expect(await stores.volumes.get(p, 'reg-3')).toBeUndefined();
      // a volume id taken is not a path taken
      await expect(stores.volumes.create(volume(p, 'reg-1', { path: `${path}.other`, managed: false }))).rejects.not.toBeInstanceOf(PathTakenError);
      expect(await opened.subject.get(registeredPathKey(`${path}.other`))).toBeUndefined();

      // a locked volume keeps its path
      await stores.volumes.lock(p, 'reg-1', 'j-1', 'backing-up', ['available']);
      expect(await stores.volumes.delete(p, 'reg-1')).toBe(false);
      await expect(stores.volumes.create(volume(q, 'reg-2', { path, managed: false }))).rejects.toBeInstanceOf(PathTakenError);
      await stores.volumes.release(p, 'reg-1', 'j-1');
      expect(await stores.volumes.delete(p, 'reg-1')).toBe(true);
      expect(await opened.subject.get(registeredPathKey(path))).toBeUndefined();
      await stores.volumes.create(volume(q, 'reg-2', { path, managed: false }));
      expect(await opened.subject.get(registeredPathKey(path))).toMatchObject({ projectId: q, volumeId: 'reg-2' });
    });

    it('reserves no path for managed images, and deletes registered volumes from before reservations', async () => {
      const p = newProject();
      const path = `/managed/${randomUUID()}.img`;
      await stores.volumes.create(volume(p, 'm-1', { path }));
      expect(await opened.subject.get(registeredPathKey(path))).toBeUndefined();
      expect(await stores.volumes.delete(p, 'm-1')).toBe(true);

      const legacyPath = `/legacy/${randomUUID()}.img`;
      await opened.subject.put({ pk: `P#${p}`, sk: 'VOLUME#old', ...volume(p, 'old', { path: legacyPath, managed: false }) });
      // another volume holds a reservation of the same path: deleting the old one leaves it alone
      await stores.volumes.create(volume(newProject(), 'new', { path: legacyPath, managed: false }));
      expect(await stores.volumes.delete(p, 'old')).toBe(true);
      expect(await stores.volumes.get(p, 'old')).toBeUndefined();
      expect(await opened.subject.get(registeredPathKey(legacyPath))).toMatchObject({ volumeId: 'new' });
    });
  });

  describe('tokens', () => {
    it('issues a token and resolves it to its project, storing only its hash', async () => {
      const p = newProject();
      const { token, record } = await stores.tokens.issue(p, 'ci');
      expect(record).toMatchObject({ projectId: p, description: 'ci' });
      expect(await stores.tokens.resolve(token)).toEqual(record);
      expect(await stores.tokens.resolve(`${token}x`)).toBeUndefined();
      expect(await stores.tokens.resolve('')).toBeUndefined();
      expect(await opened.subject.get({ pk: `TOKEN#${hashToken(token)}`, sk: 'TOKEN' })).toBeDefined();
      const { token: second, record: bare } = await stores.tokens.issue(p);
      expect(second).not.toBe(token);
      expect(await stores.tokens.resolve(second)).toEqual(bare);
      expect(bare.description).toBeUndefined();
    });

    it('gives a token a scope (admin unless told) and an optional expiry after which it does not resolve', async () => {
      const p = newProject();
      const { token: admin, record: adminRecord } = await stores.tokens.issue(p);
      expect(adminRecord.scope).toBe('admin');
      expect(adminRecord.expiresAt).toBeUndefined();
      const issuedAt = new Date('2030-01-01T00:00:00.000Z');
      const expiresAt = new Date('2030-01-01T01:00:00.000Z');
      const { token: user, record } = await stores.tokens.issue(p, 'ci', { scope: 'user', expiresAt, now: issuedAt });
      expect(record).toMatchObject({ scope: 'user', createdAt: issuedAt.toISOString(), expiresAt: expiresAt.toISOString(), description: 'ci' });
      expect(await stores.tokens.resolve(user, new Date('2030-01-01T00:59:59.999Z'))).toEqual(record);
      expect(await stores.tokens.resolve(user, expiresAt)).toBeUndefined();
      expect(await stores.tokens.resolve(admin, new Date('2999-01-01T00:00:00.000Z'))).toEqual(adminRecord);
    });

    it('lists a project’s tokens oldest first without secrets or hashes, and revokes one by id', async () => {
      const [p, q] = [newProject(), newProject()];
      const first = await stores.tokens.issue(p, 'first', { now: new Date('2026-01-01T00:00:00.000Z') });
      const second = await stores.tokens.issue(p, undefined, { scope: 'user', now: new Date('2026-01-02T00:00:00.000Z'), expiresAt: new Date('2026-01-03T00:00:00.000Z') });
      const foreign = await stores.tokens.issue(q);
      const listed = await stores.tokens.list(p);
      expect(listed).toEqual([first.record, second.record]);
      const text = JSON.stringify(listed);
      for (const secret of [first.token, second.token]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(hashToken(secret));
      }

      expect(await stores.tokens.revoke(q, first.record.tokenId)).toBe(false); // another project's token
      expect(await stores.tokens.resolve(first.token)).toEqual(first.record);
      expect(await stores.tokens.revoke(p, first.record.tokenId)).toBe(true);
      expect(await stores.tokens.resolve(first.token)).toBeUndefined();
      expect(await opened.subject.get({ pk: `TOKEN#${hashToken(first.token)}`, sk: 'TOKEN' })).toBeUndefined();
      expect(await stores.tokens.revoke(p, first.record.tokenId)).toBe(false);
      expect(await stores.tokens.revoke(p, 'never-issued')).toBe(false);
      expect(await stores.tokens.list(p)).toEqual([second.record]);
      expect(await stores.tokens.list(q)).toEqual([foreign.record]);
    });

    it('resolves a token stored before scopes existed as admin', async () => {
      const p = newProject();
      const legacy = 'ovbs_legacy-token-from-an-older-version';
      await opened.subject.put({ pk: `TOKEN#${hashToken(legacy)}`, sk: 'TOKEN', tokenId: 'legacy', projectId: p, createdAt: '2025-01-01T00:00:00.000Z' });
      expect(await stores.tokens.resolve(legacy)).toEqual({ tokenId: 'legacy', projectId: p, scope: 'admin', createdAt: '2025-01-01T00:00:00.000Z' });
    });
  });

  describe('GC queue', () => {
    it('removes a deleting backup and queues it in one transaction', async () => {
      const p = newProject();
      const rec = backup(p, 'b-1', { status: 'deleting', segmentCount: 3 });
      await stores.backups.createBackup(rec);
      expect(await stores.gcQueue.removeBackupAndQueue(rec)).toBe(true);
      expect(await stores.backups.getBackup(p, 'b-1')).toBeUndefined();
      const entry = (await stores.gcQueue.list()).find((e) => e.projectId === p);
      expect(entry).toMatchObject({ backupId: 'b-1', domainId: rec.domainId, manifestPrefix: rec.manifestPrefix, segmentCount: 3 });
      expect(typeof entry!.deletedAt).toBe('string');
    });

    it('leaves a backup that is not deleting, or gone, and queues nothing', async () => {
      const p = newProject();
      const rec = backup(p, 'b-1', { status: 'available' });
      await stores.backups.createBackup(rec);
      expect(await stores.gcQueue.removeBackupAndQueue(rec)).toBe(false);
      expect(await stores.gcQueue.removeBackupAndQueue(backup(p, 'gone', { status: 'deleting' }))).toBe(false);
      expect(await stores.backups.getBackup(p, 'b-1')).toEqual(rec);
      expect((await stores.gcQueue.list()).filter((e) => e.projectId === p)).toEqual([]);
    });
  });
});

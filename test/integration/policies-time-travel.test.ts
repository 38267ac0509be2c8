// Backup policies over simulated weeks: the tick driven by an injected clock, the real local runtime running the
// backup and delete workflows in-process on real files and the embedded catalog. Each scenario has its own
// project, so its ticks (scoped to the project) see only its policies.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { createServices } from '../../lib/service/factory.ts';
import type { Services } from '../../lib/service/factory.ts';
import type { TickReport } from '../../lib/policies/tick.ts';
import { ManualClock } from '../../lib/util/clock.ts';
import { writeDiskImage } from '../support/disk-image.ts';

const MiB = 1024 * 1024;
const HOUR = 3600 * 1000;

describe('backup policies in simulated time (local runtime, embedded backend)', () => {
  let svc: LocalService;
  let home: string;
  let services: Services;
  const clock = new ManualClock('2025-03-02T12:00:00Z'); // a Sunday

  beforeAll(async () => {
    process.env.OPENVBS_SEGMENT_BLOCKS = '8';
    process.env.OPENVBS_TICK_SECONDS = '0'; // no timer: this test is the only one ticking
    home = await mkdtemp(join(tmpdir(), 'openvbs-policies-'));
    svc = await startLocalService({ backend: 'embedded', port: 0, home, workers: 1 });
    services = createServices({ stores: svc.runtime.stores, keys: svc.runtime.backend.keys, workflows: svc.workflows, provider: svc.runtime.volumes, dataDir: home, clock });
  });

  afterAll(async () => {
    await svc?.stop();
    await rm(home, { recursive: true, force: true });
  });

  const newProject = () => randomBytes(16).toString('hex');

  async function volume(projectId: string, name: string, seed: number) {
    const v = await services.volumes.create(projectId, { name, sizeBytes: 4 * MiB });
    await writeDiskImage(v.path!, 4 * MiB, seed);
    return v.volumeId;
  }

  /** A tick at `at`, then everything it started run to the end. */
  async function tick(projectId: string, at: Date | string): Promise<TickReport> {
    clock.set(at);
    const report = await services.policies.tick(projectId);
    await svc.workflows.idle();
    return report;
  }

  async function backupsOf(projectId: string, volumeId: string) {
    return (await services.backups.list(projectId, { volumeId, sortKey: 'created_at', sortDir: 'asc' })).backups.map((b) => b.record);
  }

  it('fires exactly on its slots over two weeks, keeps 3 backups per volume (plus the month’s first when asked), never touches manual backups; a disabled policy never fires', async () => {
    const p = newProject();
    const volumes = [await volume(p, 'db-1', 1), await volume(p, 'db-2', 2), await volume(p, 'db-3', 3)];
    const monthly = await volume(p, 'db-monthly', 4);
    const idle = await volume(p, 'db-off', 5);

    // A manual backup of each volume before the policies exist: retention must never take it.
    clock.set('2025-03-02T12:00:00Z');
    for (const v of [...volumes, monthly]) await services.backups.create(p, { volumeId: v, name: `manual-${v.slice(0, 8)}` });
    await svc.workflows.idle();

    const scheduled = { startTime: '02:00,14:00', weekFrequency: ['MON', 'THU'], retentionNum: 3 };
    const tags = [{ key: 'team', value: 'storage' }];
    const { policy } = await services.policies.create(p, { name: 'twice-mon-thu', scheduled, tags });
    const { policy: keepFirst } = await services.policies.create(p, { name: 'keep-first', scheduled: { ...scheduled, remainFirstBackupOfCurMonth: true } });
    const { policy: off } = await services.policies.create(p, { name: 'switched-off', scheduled: { ...scheduled, status: 'OFF' } });
    expect((await services.policies.associate(p, policy.policyId, volumes.map((resourceId) => ({ resourceId, resourceType: 'volume' })))).fail).toEqual([]);
    await services.policies.associate(p, keepFirst.policyId, [{ resourceId: monthly, resourceType: 'volume' }]);
    await services.policies.associate(p, off.policyId, [{ resourceId: idle, resourceType: 'volume' }]);

    // Two weeks of ticks every 30 minutes, two minutes past: Mon 3 March to Sun 16 March 2025.
    const fired: Record<string, string[]> = {};
    for (let t = Date.parse('2025-03-02T12:02:00Z'); t <= Date.parse('2025-03-16T23:32:00Z'); t += HOUR / 2) {
      const report = await tick(p, new Date(t));
      for (const run of report.runs) {
        expect(run.late).toBe(false);
        (fired[run.policyId] ??= []).push(run.slot);
      }
    }
    await tick(p, '2025-03-17T00:02:00Z'); // settles the last run and prunes after it

    const expected = ['2025-03-03T02:00', '2025-03-03T14:00', '2025-03-06T02:00', '2025-03-06T14:00', '2025-03-10T02:00', '2025-03-10T14:00', '2025-03-13T02:00', '2025-03-13T14:00'].map((s) => `${s}:00.000Z`);
    expect(fired[policy.policyId]).toEqual(expected);
    expect(fired[keepFirst.policyId]).toEqual(expected);
    expect(fired[off.policyId]).toBeUndefined();

    const tasks = await services.policies.tasks(p, policy.policyId, { sortDir: 'asc' });
    expect(tasks.count).toBe(8 * 3);
    expect(new Set(tasks.tasks.map((t) => t.status))).toEqual(new Set(['EXECUTE_SUCCESS']));
    expect((await services.policies.tasks(p, off.policyId)).count).toBe(0);

    const newestThree = expected.slice(-3);
    for (const v of volumes) {
      const all = await backupsOf(p, v);
      expect(all.filter((b) => b.name.startsWith('manual-')).map((b) => b.status)).toEqual(['available']);
      const auto = all.filter((b) => b.name.startsWith('autobk_'));
      expect(auto).toHaveLength(3);
      expect(auto.every((b) => b.status === 'available')).toBe(true);
      expect(auto.map((b) => b.name)).toEqual(newestThree.map((s) => `autobk_${s.slice(0, 16).replace(/[-T:]/g, '')}`));
      expect(auto.every((b) => JSON.stringify(b.extra?.tags) === JSON.stringify(tags))).toBe(true);
    }
    // remain_first_backup_of_curMonth: March's first (3 March, 02:00) stays besides the newest three.
    const kept = (await backupsOf(p, monthly)).filter((b) => b.name.startsWith('autobk_')).map((b) => b.name);
    expect(kept).toEqual(['autobk_202503030200', 'autobk_202503101400', 'autobk_202503130200', 'autobk_202503131400']);
    expect((await backupsOf(p, monthly)).some((b) => b.name.startsWith('manual-'))).toBe(true);
    expect(await backupsOf(p, idle)).toEqual([]);
  }, 600_000);

  it('runs a slot once when two ticks overlap, and once when a tick is retried', async () => {
    const p = newProject();
    const v = await volume(p, 'overlap', 6);
    clock.set('2025-04-01T08:00:00Z');
    const { policy } = await services.policies.create(p, { name: 'daily-nine', scheduled: { startTime: '09:00', frequency: 1, retentionNum: 2 } });
    await services.policies.associate(p, policy.policyId, [{ resourceId: v, resourceType: 'volume' }]);

    clock.set('2025-04-01T09:01:00Z');
    const both = await Promise.all([services.policies.tick(p), services.policies.tick(p)]);
    const retry = await services.policies.tick(p);
    await svc.workflows.idle();
    expect(both.flatMap((r) => r.runs).map((r) => r.slot)).toEqual(['2025-04-01T09:00:00.000Z']);
    expect(retry.runs).toEqual([]);
    expect((await services.policies.tasks(p, policy.policyId)).count).toBe(1);
    expect((await backupsOf(p, v)).filter((b) => b.name.startsWith('autobk_'))).toHaveLength(1);
  }, 120_000);

  it('runs the slot a tick outage missed once, late, marked as such; several missed slots still run once', async () => {
    const p = newProject();
    const v = await volume(p, 'outage', 7);
    clock.set('2025-05-01T00:00:00Z');
    const { policy } = await services.policies.create(p, { name: 'daily-six', scheduled: { startTime: '06:00', frequency: 1, retentionNum: 5 }, timeZone: 'UTC+08:00' });
    await services.policies.associate(p, policy.policyId, [{ resourceId: v, resourceType: 'volume' }]);

    expect((await tick(p, '2025-05-01T21:55:00Z')).runs).toEqual([]); // 05:55 at UTC+08:00
    // The tick is down from here until 04:00 UTC (12:00 local): the 06:00 slot was missed.
    const late = await tick(p, '2025-05-02T04:00:00Z');
    expect(late.runs.map((r) => [r.slot, r.late])).toEqual([['2025-05-01T22:00:00.000Z', true]]);
    expect(late.missed).toEqual([]);
    const [task] = (await services.policies.tasks(p, policy.policyId)).tasks;
    expect(task).toMatchObject({ late: true, scheduledAt: '2025-05-01T22:00:00.000Z', status: 'EXECUTE_SUCCESS' });

    // Down for three days: one late run for the latest slot, the two before it recorded as missed.
    const after = await tick(p, '2025-05-05T03:00:00Z');
    expect(after.runs.map((r) => [r.slot, r.late])).toEqual([['2025-05-04T22:00:00.000Z', true]]);
    expect(after.missed.map((m) => m.slot)).toEqual(['2025-05-02T22:00:00.000Z', '2025-05-03T22:00:00.000Z']);
    expect((await tick(p, '2025-05-05T03:05:00Z')).runs).toEqual([]);
    expect((await backupsOf(p, v)).filter((b) => b.name.startsWith('autobk_'))).toHaveLength(2);
  }, 120_000);
});

// CSBS backup policies over simulated weeks: the shared tick driven by an injected clock, the real local runtime
// running the server backup and checkpoint delete workflows in-process on real files and the embedded catalog.
// Each scenario has its own project, so its ticks (scoped to the project) see only its policies.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { createServices } from '../../lib/service/factory.ts';
import type { Services } from '../../lib/service/factory.ts';
import type { Notification } from '../../lib/notify/notifier.ts';
import type { TickReport } from '../../lib/policies/tick.ts';
import { ManualClock } from '../../lib/util/clock.ts';
import { writeDiskImage } from '../support/disk-image.ts';

const MiB = 1024 * 1024;
const HOUR = 3600 * 1000;
const SERVER = 'OS::Nova::Server';

describe('CSBS backup policies in simulated time (local runtime, embedded backend)', () => {
  let svc: LocalService;
  let home: string;
  let services: Services;
  const clock = new ManualClock('2025-03-02T12:00:00Z'); // a Sunday
  /** What the policy runs reported (event `policy`). */
  const notifications: Notification[] = [];

  beforeAll(async () => {
    process.env.OPENVBS_SEGMENT_BLOCKS = '8';
    process.env.OPENVBS_TICK_SECONDS = '0'; // no timer: this test is the only one ticking
    home = await mkdtemp(join(tmpdir(), 'openvbs-csbs-policies-'));
    svc = await startLocalService({ backend: 'embedded', port: 0, home, workers: 1 });
    const notifier = { publish: async (n: Notification) => void notifications.push(n) };
    services = createServices({ stores: svc.runtime.stores, keys: svc.runtime.backend.keys, workflows: svc.workflows, provider: svc.runtime.volumes, dataDir: home, clock, notifier });
  });

  afterAll(async () => {
    await svc?.stop();
    await rm(home, { recursive: true, force: true });
  });

  const newProject = () => randomBytes(16).toString('hex');

  /** A running server with two disks (4 MiB and 3 MiB) of seeded data. */
  async function server(projectId: string, name: string, seed: number): Promise<string> {
    const disks: string[] = [];
    for (const [i, size] of [4 * MiB, 3 * MiB].entries()) {
      const v = await services.volumes.create(projectId, { name: `${name}-disk${i}`, sizeBytes: size });
      await writeDiskImage(v.path!, size, seed * 10 + i);
      disks.push(v.volumeId);
    }
    return (await services.servers.create(projectId, { name, status: 'running', disks: disks.map((volumeId) => ({ volumeId })) })).serverId;
  }

  /** A tick at `at`, then everything it started run to the end. */
  async function tick(projectId: string, at: Date | string): Promise<TickReport> {
    clock.set(at);
    const report = await services.policies.tick(projectId);
    await svc.workflows.idle();
    return report;
  }

  async function checkpointsOf(projectId: string, serverId: string) {
    return (await services.serverBackups.items(projectId, { resourceId: serverId, sort: 'created_at:asc' })).items.map((v) => v.checkpoint);
  }

  const operation = (pattern: string, definition: Record<string, unknown>, enabled = true) => ({ name: 'backup', enabled, pattern, ...definition });
  const resource = (id: string) => ({ id, type: SERVER });
  const stamp = (iso: string) => `autobk_${iso.slice(0, 16).replace(/[-T:]/g, '')}`;

  it('fires exactly on its RRULE slots over two weeks, keeps what the generations say, never touches manual server backups; a disabled or suspended policy never fires', async () => {
    const p = newProject();
    const app = await server(p, 'app', 1);
    const idle = await server(p, 'idle', 2);
    const paused = await server(p, 'paused', 3);

    // A manual backup before the policies exist: retention must never take it.
    clock.set('2025-03-02T12:00:00Z');
    await services.serverBackups.protect(p, app, { name: 'manual-before' });
    await svc.workflows.idle();

    const pattern = 'FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=2,14;BYMINUTE=0';
    const generations = { dayBackups: 2, weekBackups: 2, timezone: 'UTC' };
    const tags = [{ key: 'team', value: 'storage' }];
    const { policy } = await services.csbsPolicies.create(p, { name: 'mon-thu', operations: [operation(pattern, generations)], resources: [resource(app)], tags });
    const off = await services.csbsPolicies.create(p, { name: 'switched-off', operations: [operation(pattern, { maxBackups: 2 }, false)], resources: [resource(idle)] });
    expect(off.status).toBe('disabled');
    const suspended = await services.csbsPolicies.create(p, { name: 'suspended', operations: [operation(pattern, { maxBackups: 2 })], resources: [resource(paused)], status: 'suspended' });
    expect(suspended.status).toBe('suspended');

    // Two weeks of ticks every 30 minutes, two minutes past: Mon 3 March to Sun 16 March 2025. A manual backup
    // in the middle (Saturday) must stay too.
    const fired: Record<string, string[]> = {};
    for (let t = Date.parse('2025-03-02T12:02:00Z'); t <= Date.parse('2025-03-16T23:32:00Z'); t += HOUR / 2) {
      if (t === Date.parse('2025-03-08T12:02:00Z')) {
        clock.set(new Date(t));
        await services.serverBackups.protect(p, app, { name: 'manual-middle' });
        await svc.workflows.idle();
      }
      const report = await tick(p, new Date(t));
      for (const run of report.runs) {
        expect(run.late).toBe(false);
        (fired[run.policyId] ??= []).push(run.slot);
      }
    }
    await tick(p, '2025-03-17T00:02:00Z'); // settles the last run and prunes after it

    const expected = ['2025-03-03T02:00', '2025-03-03T14:00', '2025-03-06T02:00', '2025-03-06T14:00', '2025-03-10T02:00', '2025-03-10T14:00', '2025-03-13T02:00', '2025-03-13T14:00'].map((s) => `${s}:00.000Z`);
    expect(fired[policy.policyId]).toEqual(expected);
    expect(fired[off.policy.policyId]).toBeUndefined();
    expect(fired[suspended.policy.policyId]).toBeUndefined();

    const tasks = await svc.runtime.stores.policies.tasks(p, policy.policyId, '2025-03-01T00:00:00.000Z');
    expect(tasks.map((t) => [t.scheduledAt, t.status, t.resourceType])).toEqual(expected.map((s) => [s, 'EXECUTE_SUCCESS', 'server']));

    // Generations (UTC): the newest of each of the last 2 days with backups (13th, 10th) and of the last 2 ISO
    // weeks (week 11: the 13th's; week 10: 6 March 14:00). Every other policy backup was deleted with its disks.
    const all = await checkpointsOf(p, app);
    expect(all.filter((c) => c.name.startsWith('manual-')).map((c) => [c.name, c.status, c.autoTrigger])).toEqual([
      ['manual-before', 'available', false],
      ['manual-middle', 'available', false],
    ]);
    const auto = all.filter((c) => c.name.startsWith('autobk_'));
    expect(auto.map((c) => c.name)).toEqual(['2025-03-06T14:00', '2025-03-10T14:00', '2025-03-13T14:00'].map(stamp));
    for (const c of auto) {
      expect(c.status).toBe('available');
      expect(c.autoTrigger).toBe(true);
      expect(c.policyId).toBe(policy.policyId);
      expect(c.tags).toEqual(tags);
      expect(c.disks).toHaveLength(2);
    }
    // The disk backups of deleted checkpoints are gone too; those of kept ones are there.
    const diskBackups = (await services.backups.list(p, {})).backups.map((b) => b.record);
    const keptDisks = new Set(all.flatMap((c) => c.disks.map((d) => d.backupId)));
    expect(new Set(diskBackups.map((b) => b.backupId))).toEqual(keptDisks);
    expect(await checkpointsOf(p, idle)).toEqual([]);
    expect(await checkpointsOf(p, paused)).toEqual([]);
  }, 900_000);

  it('runs a slot once when two ticks overlap, and once when a tick is retried', async () => {
    const p = newProject();
    const s = await server(p, 'overlap', 4);
    clock.set('2025-04-01T08:00:00Z');
    const { policy } = await services.csbsPolicies.create(p, { name: 'daily-nine', operations: [operation('FREQ=DAILY;BYHOUR=9;BYMINUTE=0', { maxBackups: 2 })], resources: [resource(s)] });

    clock.set('2025-04-01T09:01:00Z');
    const both = await Promise.all([services.policies.tick(p), services.policies.tick(p)]);
    const retry = await services.policies.tick(p);
    await svc.workflows.idle();
    expect(both.flatMap((r) => r.runs).map((r) => r.slot)).toEqual(['2025-04-01T09:00:00.000Z']);
    expect(retry.runs).toEqual([]);
    expect(await svc.runtime.stores.policies.tasks(p, policy.policyId, '2025-04-01T00:00:00.000Z')).toHaveLength(1);
    expect((await checkpointsOf(p, s)).map((c) => [c.name, c.status])).toEqual([['autobk_202504010900', 'available']]);
    // The run is notified once, when the next pass sees its backup ended.
    expect(notifications.filter((n) => n.projectId === p)).toEqual([]);
    await tick(p, '2025-04-01T09:30:00Z');
    const [note, ...more] = notifications.filter((n) => n.projectId === p);
    expect(more).toEqual([]);
    expect(note).toMatchObject({ event: 'policy', status: 'success', subject: 'OpenVBS: Backup policy run of policy daily-nine succeeded' });
    expect(note!.text).toContain('Backups succeeded: 1');
  }, 120_000);

  it('runs the slot a tick outage missed once, late; several missed slots still run once', async () => {
    const p = newProject();
    const s = await server(p, 'outage', 5);
    clock.set('2025-05-01T00:00:00Z');
    const { policy } = await services.csbsPolicies.create(p, { name: 'daily-six', operations: [operation('FREQ=DAILY;BYHOUR=6;BYMINUTE=0', { retentionDurationDays: 30 })], resources: [resource(s)] });

    expect((await tick(p, '2025-05-01T05:55:00Z')).runs).toEqual([]);
    // The tick is down from here until 12:00: the 06:00 slot was missed.
    const late = await tick(p, '2025-05-01T12:00:00Z');
    expect(late.runs.map((r) => [r.slot, r.late])).toEqual([['2025-05-01T06:00:00.000Z', true]]);
    const [task] = await svc.runtime.stores.policies.tasks(p, policy.policyId, '2025-05-01T00:00:00.000Z');
    expect(task).toMatchObject({ late: true, scheduledAt: '2025-05-01T06:00:00.000Z', status: 'RUNNING' });

    // Down for three days: one late run for the latest slot, the two before it recorded as missed.
    const after = await tick(p, '2025-05-04T11:00:00Z');
    expect(after.runs.map((r) => [r.slot, r.late])).toEqual([['2025-05-04T06:00:00.000Z', true]]);
    expect(after.missed.map((m) => m.slot)).toEqual(['2025-05-02T06:00:00.000Z', '2025-05-03T06:00:00.000Z']);
    expect((await tick(p, '2025-05-04T11:05:00Z')).runs).toEqual([]);
    expect((await checkpointsOf(p, s)).map((c) => c.name)).toEqual(['autobk_202505010600', 'autobk_202505040600']);
  }, 120_000);

  it('keeps an expired checkpoint while it is being restored and deletes it at a later run', async () => {
    const p = newProject();
    const s = await server(p, 'restoring', 6);
    clock.set('2025-06-01T00:00:00Z');
    await services.csbsPolicies.create(p, { name: 'keep-one', operations: [operation('FREQ=DAILY;BYHOUR=9;BYMINUTE=0', { maxBackups: 1 })], resources: [resource(s)] });

    await tick(p, '2025-06-01T09:05:00Z');
    await tick(p, '2025-06-01T09:35:00Z'); // settles day 1
    const [first] = await checkpointsOf(p, s);
    expect(first).toMatchObject({ name: 'autobk_202506010900', status: 'available' });
    // A restore of it is under way (held in `restoring` as the restore workflow holds it).
    await svc.runtime.stores.checkpoints.transition(p, first!.checkpointId, { from: ['available'], to: 'restoring', backupFrom: ['available'], backupTo: 'restoring' });

    await tick(p, '2025-06-02T09:05:00Z');
    await tick(p, '2025-06-02T09:35:00Z'); // day 2 settled: day 1 has expired, but it is being restored
    expect((await checkpointsOf(p, s)).map((c) => [c.name, c.status])).toEqual([
      ['autobk_202506010900', 'restoring'],
      ['autobk_202506020900', 'available'],
    ]);

    await svc.runtime.stores.checkpoints.transition(p, first!.checkpointId, { from: ['restoring'], to: 'available', backupFrom: ['restoring'], backupTo: 'available' });
    await tick(p, '2025-06-03T09:05:00Z');
    await tick(p, '2025-06-03T09:35:00Z'); // day 3 settled: only it stays
    expect((await checkpointsOf(p, s)).map((c) => [c.name, c.status])).toEqual([['autobk_202506030900', 'available']]);
  }, 180_000);
});

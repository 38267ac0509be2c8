// `openvbs server-backup …` in-process against the real API app (its fetch answered by app.request) on the
// services over a real SQLite catalog and server inventory. Workflows are only recorded: while the CLI
// waits, each of its sleeps moves the job along in the catalog as the workflow's steps would (disks
// running, then done), with a fake clock.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import type { CliIO } from '../../lib/cli/context.ts';
import { run } from '../../lib/cli/main.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

const MiB = 1024 * 1024;
const URL_BASE = 'http://openvbs.test';
let env: ServiceEnv;
let app: ApiApp;
let home: string;
let token: string;
const p = projectId();
/** Requests the CLI sent: method, path and body. */
const sent: Array<{ method: string; path: string; body: unknown }> = [];

beforeAll(async () => {
  env = await createServiceEnv();
  app = createApiApp(env.services, { logger: { error: () => {} } });
  token = (await env.services.tokens.create(p, { scope: 'admin' })).token;
  home = mkdtempSync(join(tmpdir(), 'openvbs-cli-'));
});
afterAll(async () => {
  await env?.close();
  rmSync(home, { recursive: true, force: true });
});

/** Runs the CLI; `step` runs at each of its sleeps (the n-th sleep: n = 0, 1, ...). */
async function cli(argv: string[], options: { tty?: boolean; step?: (n: number) => Promise<void> } = {}) {
  let t = 0;
  let sleeps = 0;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: options.tty ?? false, columns: 200 },
    env: { OPENVBS_HOME: home, OPENVBS_URL: URL_BASE, OPENVBS_PROJECT: p, OPENVBS_TOKEN: token },
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      sent.push({ method: init?.method ?? 'GET', path: url.pathname + url.search, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined });
      return app.request(url.toString(), init);
    }) as typeof fetch,
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
      await options.step?.(sleeps++);
    },
  };
  const code = await run(argv, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join(''), stderrChunks: stderr };
}

async function server(name: string, sizesMiB: number[], status: 'running' | 'stopped' = 'stopped') {
  const disks = [];
  for (const [i, size] of sizesMiB.entries()) disks.push({ volumeId: (await env.services.volumes.create(p, { name: `${name}-d${i}`, sizeBytes: size * MiB })).volumeId });
  return env.services.servers.create(p, { name, status, disks });
}

const latestCheckpoint = async (serverId: string) => (await env.stores.checkpoints.list(p)).filter((c) => c.serverId === serverId).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1)!;

/** The server backup's disks half done (the first disk running, the second not started). */
async function disksRunning(checkpointId: string) {
  const c = (await env.stores.checkpoints.get(p, checkpointId))!;
  await env.stores.jobs.update(p, c.jobId, { status: 'RUNNING', beginTime: new Date().toISOString() });
  const [first, second] = c.disks;
  await env.stores.jobs.update(p, first!.jobId, { status: 'RUNNING', bytesTotal: first!.sizeBytes, bytesDone: first!.sizeBytes / 2 });
  await env.stores.jobs.update(p, second!.jobId, { status: 'INIT', bytesTotal: second!.sizeBytes, bytesDone: 0 });
}

/** The workflow's commit: disk backups available, every job SUCCESS. */
async function committed(checkpointId: string) {
  const c = (await env.stores.checkpoints.get(p, checkpointId))!;
  const end = new Date().toISOString();
  for (const d of c.disks) {
    await env.stores.backups.createBackup(backupRecord(p, { backupId: d.backupId, volumeId: d.volumeId, name: `${c.name}_${d.device.split('/').pop()}`, status: 'creating', sizeBytes: d.sizeBytes }));
    await env.stores.jobs.update(p, d.jobId, { status: 'SUCCESS', endTime: end, bytesTotal: d.sizeBytes, bytesDone: d.sizeBytes });
  }
  await env.stores.checkpoints.transition(p, checkpointId, { from: ['protecting'], to: 'available', backupFrom: ['creating'], backupTo: 'available', patch: { finishedAt: end } });
  await env.stores.jobs.update(p, c.jobId, { status: 'SUCCESS', endTime: end });
}

/** Ends a job and its sub-jobs (a restore or delete workflow done). */
async function jobDone(jobId: string, status: 'SUCCESS' | 'FAIL' = 'SUCCESS') {
  for (const sub of await env.stores.jobs.listSubJobs(p, jobId)) await env.stores.jobs.update(p, sub.jobId, { status, endTime: new Date().toISOString(), bytesTotal: MiB, bytesDone: MiB });
  await env.stores.jobs.update(p, jobId, { status, endTime: new Date().toISOString(), ...(status === 'FAIL' ? { errorCode: 'OpenVBS.ServerBackupFailed', failReason: 'disk /dev/vdb: read failed' } : {}) });
}

describe('openvbs server-backup', () => {
  it('lists the command group in the help', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}server-backup create\|list\|show\|delete\|restore /m);
  });

  it('creates a server backup without waiting and says how to follow it', async () => {
    const s = await server('nowait', [1]);
    const r = await cli(['server-backup', 'create', s.serverId, '--name', 'first', '--description', 'd', '--full']);
    expect(r.code).toBe(0);
    expect(sent.at(-1)).toMatchObject({ method: 'POST', path: `/v1/${p}/providers/fc4d5750-22e7-4798-8a46-f48f62c4c1da/resources/${s.serverId}/action` });
    expect(sent.at(-1)!.body).toEqual({ protect: { backup_name: 'first', description: 'd', incremental: false, resource_type: 'OS::Nova::Server' } });
    const c = await latestCheckpoint(s.serverId);
    expect(c.forceFull).toBe(true);
    expect(r.stdout).toMatch(new RegExp(`^checkpoint_id: +${c.checkpointId}$`, 'm'));
    expect(r.stdout).toMatch(/^status: +protecting$/m);
    expect(r.stderr).toContain(`openvbs job wait ${c.jobId}`);
  });

  it('waits for a server backup with one progress line per disk on a terminal, then the summary and each disk', async () => {
    const s = await server('waiter', [2, 1]);
    const r = await cli(['server-backup', 'create', s.serverId, '--name', 'waited', '--wait'], {
      tty: true,
      step: async (n) => {
        const c = await latestCheckpoint(s.serverId);
        if (n === 0) await disksRunning(c.checkpointId);
        if (n === 1) await committed(c.checkpointId);
      },
    });
    expect(r.stderr).not.toMatch(/^error/m);
    expect(r.code).toBe(0);
    // the live block while the disks run: the server job's line and one per disk, by device
    const live = r.stderrChunks.find((chunk) => chunk.includes('/dev/vdb') && chunk.includes('RUNNING'))!;
    expect(live).toBeDefined();
    const lines = live.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/server backup RUNNING/);
    expect(lines[1]).toMatch(/^ {2}\/dev\/vda +RUNNING +\[#+-+\] +50%/);
    expect(lines[2]).toMatch(/^ {2}\/dev\/vdb +INIT +\[-+\] +0%/);
    // redrawn in place: the next block moves up over the last one
    expect(r.stderrChunks.some((chunk) => chunk.startsWith('\r\x1b[2A\x1b[J'))).toBe(true);
    const tail = r.stderr.slice(r.stderr.lastIndexOf('server backup job'));
    expect(tail).toMatch(/^server backup job \S+ SUCCESS in /);
    expect(tail).toMatch(/^ {2}\/dev\/vda +SUCCESS +\[#+\] +100%/m);
    expect(tail).toMatch(/^ {2}\/dev\/vdb +SUCCESS +\[#+\] +100%/m);
    expect(r.stdout).toMatch(/^status: +SUCCESS$/m);
  });

  it('shows each disk when the wait ends off a terminal, and fails with the job’s reason', async () => {
    const s = await server('failing', [1, 1]);
    const r = await cli(['server-backup', 'create', s.serverId, '--wait'], {
      step: async () => {
        const c = await latestCheckpoint(s.serverId);
        await jobDone(c.jobId, 'FAIL');
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^server backup job \S+ FAIL after /m);
    expect(r.stderr).toMatch(/^ {2}\/dev\/vda +FAIL /m);
    expect(r.stderr).toMatch(/^ {2}\/dev\/vdb +FAIL /m);
    expect(r.stderr).toMatch(/^error: OpenVBS.ServerBackupFailed: disk \/dev\/vdb: read failed$/m);
    expect(r.stderr).not.toContain('\x1b[');
  });

  it('lists server backups as a table, by server and status; shows one by item or checkpoint id with its disks', async () => {
    const s = await server('lister', [2, 1]);
    await cli(['server-backup', 'create', s.serverId, '--name', 'listed']);
    const c = await latestCheckpoint(s.serverId);
    await committed(c.checkpointId);

    let r = await cli(['server-backup', 'list', '--server', s.serverId]);
    expect(r.code).toBe(0);
    expect(sent.at(-1)!.path).toBe(`/v1/${p}/checkpoint_items?resource_id=${s.serverId}`);
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^ID +CHECKPOINT +NAME +SERVER +STATUS +DISKS +SIZE_MB +TYPE +PROGRESS +CREATED$/);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatch(new RegExp(`^${c.itemId} +${c.checkpointId} +listed +lister +available +2 +\\d+ +full +100% +\\d{4}-`));
    r = await cli(['server-backup', 'list', '--server', s.serverId, '--status', 'error']);
    expect(r.stdout).toBe('ID  CHECKPOINT  NAME  SERVER  STATUS  DISKS  SIZE_MB  TYPE  PROGRESS  CREATED\n');
    expect(r.stderr).toContain('no server backups');

    for (const id of [c.itemId, c.checkpointId]) {
      r = await cli(['server-backup', 'show', id]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^checkpoint_id: +${c.checkpointId}$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^job_id: +${c.jobId}$`, 'm'));
      expect(r.stdout).toMatch(/^DEVICE +VOLUME +BACKUP +STATUS +SIZE_GB +DATA_MB +TYPE +BOOT$/m);
      expect(r.stdout).toMatch(new RegExp(`^/dev/vda +${s.disks[0]!.volumeId} +${c.disks[0]!.backupId} +available +1 +\\d+ +full +yes$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^/dev/vdb +${s.disks[1]!.volumeId} +${c.disks[1]!.backupId} +available +1 +\\d+ +full +no$`, 'm'));
    }
    r = await cli(['server-backup', 'show', c.itemId, '--json']);
    expect(JSON.parse(r.stdout).checkpoint_item.extend_info.volume_backups).toHaveLength(2);
    r = await cli(['server-backup', 'show', '0b7a4a8e-0000-4000-8000-00000000abcd']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: OpenVBS.0404: /);
  });

  it('restores with per-disk progress; refuses a running server; deletes and waits', async () => {
    const s = await server('restorer', [1, 1]);
    await cli(['server-backup', 'create', s.serverId]);
    const c = await latestCheckpoint(s.serverId);
    await committed(c.checkpointId);

    await env.services.servers.start(p, s.serverId);
    let r = await cli(['server-backup', 'restore', c.checkpointId]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: OpenVBS.1503: .*stop it/m);
    await env.services.servers.stop(p, s.serverId);

    r = await cli(['server-backup', 'restore', c.checkpointId, '--server', s.serverId, '--power-on', '--wait'], {
      step: async () => {
        const job = (await env.stores.jobs.list(p)).find((j) => j.jobType === 'bksRestoreServerBackup' && j.entities.checkpoint_id === c.checkpointId)!;
        await jobDone(job.jobId);
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const restoreRequest = sent.filter((q) => q.path === `/v1/${p}/restores`).at(-1)!;
    expect(restoreRequest.body).toEqual({ restore: { provider_id: 'fc4d5750-22e7-4798-8a46-f48f62c4c1da', checkpoint_id: c.checkpointId, parameters: { power_on: true, targets: { server_id: s.serverId } } } });
    expect(env.workflows.last()).toMatchObject({ workflow: 'server-restore', input: { powerOn: true } });
    expect(r.stderr).toMatch(/^server restore job \S+ SUCCESS/m);
    expect(r.stderr).toMatch(/^ {2}\/dev\/vda +SUCCESS/m);
    expect(r.stderr).toMatch(/^ {2}\/dev\/vdb +SUCCESS/m);

    // the restore left it restoring (no workflow ran): back to available, as the workflow's end would
    await env.stores.checkpoints.transition(p, c.checkpointId, { from: ['restoring'], to: 'available', backupFrom: ['restoring'], backupTo: 'available' });
    r = await cli(['server-backup', 'delete', c.checkpointId, '--wait'], {
      step: async () => {
        const job = (await env.stores.jobs.list(p)).find((j) => j.jobType === 'bksDeleteServerBackup' && j.entities.checkpoint_id === c.checkpointId)!;
        await jobDone(job.jobId);
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(sent.filter((q) => q.method === 'DELETE').at(-1)).toMatchObject({ path: `/v1/${p}/providers/fc4d5750-22e7-4798-8a46-f48f62c4c1da/checkpoints/${c.checkpointId}` });
    expect(r.stderr).toMatch(/^server delete job \S+ SUCCESS/m);
  });
});

// `openvbs backup share|shares|unshare` and `openvbs volume create --from-backup` in-process against the real API
// (the Hono app on a Node HTTP server over real stores, SQLite in memory): what each command sends and prints.
// Workflows are recorded, not run; the test ends the restore job itself where it follows one.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { CliIO } from '../../lib/cli/context.ts';
import { run } from '../../lib/cli/main.ts';
import { GIB } from '../../lib/service/sizes.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

let env: ServiceEnv;
let http: ServerType;
let url: string;
let home: string;
const A = projectId();
const B = projectId();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  env = await createServiceEnv();
  http = serve({ fetch: createApiApp(env.services, { logger: { error: () => {} } }).fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => http.once('listening', () => resolve()));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  for (const p of [A, B]) tokens[p] = (await env.services.tokens.create(p, { scope: 'admin' })).token;
  home = mkdtempSync(join(tmpdir(), 'openvbs-cli-sharing-'));
});

afterAll(async () => {
  await new Promise((resolve) => http?.close(resolve));
  await env?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

async function cli(project: string, argv: string[], io: Partial<CliIO> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await run(argv, {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: false, columns: 200 },
    env: { OPENVBS_HOME: home, OPENVBS_URL: url, OPENVBS_PROJECT: project, OPENVBS_TOKEN: tokens[project]! },
    ...io,
  });
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

describe('openvbs backup share|shares|unshare', () => {
  it('shares a backup, lists the shares on both sides, and removes them', async () => {
    const rec = backupRecord(A, { backupId: crypto.randomUUID(), name: 'cli-shared' });
    await env.stores.backups.createBackup(rec);
    const shared = await cli(A, ['backup', 'share', rec.backupId, '--to-project', B, '--json']);
    expect(shared.code).toBe(0);
    const share = JSON.parse(shared.stdout).shared[0];
    expect(share).toMatchObject({ backup_id: rec.backupId, from_project_id: A, to_project_id: B });

    const mine = await cli(A, ['backup', 'shares']);
    expect(mine.stdout).toContain(share.id);
    expect(mine.stdout).toContain('cli-shared');
    const toMe = await cli(B, ['backup', 'shares', '--to-me', '--json']);
    expect(JSON.parse(toMe.stdout).shared.map((s: { id: string }) => s.id)).toEqual([share.id]);
    expect((await cli(B, ['backup', 'shares'])).stderr).toContain('no shares');

    // The receiver is refused removing it, with the API's code.
    const refused = await cli(B, ['backup', 'unshare', share.id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('OpenVBS.1903');
    const removed = await cli(A, ['backup', 'unshare', share.id]);
    expect([removed.code, removed.stdout]).toEqual([0, `share ${share.id} removed\n`]);
    expect(JSON.parse((await cli(B, ['backup', 'shares', '--to-me', '--json'])).stdout).shared).toEqual([]);

    await cli(A, ['backup', 'share', rec.backupId, '--to-project', B, projectId()]);
    expect((await cli(A, ['backup', 'unshare', rec.backupId, '--all'])).stdout).toBe(`every share of backup ${rec.backupId} removed\n`);
    expect(await env.services.sharing.isShared(A, rec.backupId)).toBe(false);
  });
});

describe('openvbs volume create --from-backup', () => {
  it('creates a restoring volume from a shared backup and follows its job with --wait', async () => {
    const rec = backupRecord(A, { backupId: crypto.randomUUID(), sizeBytes: GIB });
    await env.stores.backups.createBackup(rec);
    await env.services.sharing.create(A, { backupId: rec.backupId, toProjectIds: [B] });

    const made = await cli(B, ['volume', 'create', '--name', 'copy', '--from-backup', rec.backupId, '--json']);
    expect(made.code).toBe(0);
    const body = JSON.parse(made.stdout);
    expect(body.volume).toMatchObject({ name: 'copy', status: 'restoring', size_bytes: GIB });
    expect(body.job_id).toBeTruthy();
    // The recorded workflow does not run: end its job as the workflow would, so the owner's backup is free again.
    await env.stores.jobs.update(B, body.job_id, { status: 'SUCCESS', endTime: new Date().toISOString() });
    await env.stores.backups.updateBackup(A, rec.backupId, { status: 'available' }, ['restoring']);

    // With --wait: the volume, then the job followed to its end (ended here at the first poll).
    const followed = await cli(B, ['volume', 'create', '--name', 'copy2', '--from-backup', rec.backupId, '--size', '2', '--wait'], {
      sleep: async () => {
        const job = env.workflows.last().name;
        await env.stores.jobs.update(B, job, { status: 'SUCCESS', endTime: new Date().toISOString() });
      },
      pollIntervalMs: 1,
    });
    expect(followed.code).toBe(0);
    expect(followed.stdout).toMatch(/status:\s+restoring/);
    expect(followed.stdout).toMatch(/status:\s+SUCCESS/);
    await env.stores.backups.updateBackup(A, rec.backupId, { status: 'available' }, ['restoring']);

    const tooSmall = await cli(B, ['volume', 'create', '--name', 'small', '--from-backup', rec.backupId, '--size-bytes', '4096']);
    expect(tooSmall.code).toBe(1);
    expect(tooSmall.stderr).toContain('OpenVBS.1105');
    const waitAlone = await cli(B, ['volume', 'create', '--name', 'x', '--size', '1', '--wait']);
    expect(waitAlone.code).toBe(2);
    expect(waitAlone.stderr).toContain('--wait needs --from-backup');
  });
});

// The whole CLI as a user runs it: `node bin/openvbs.mjs …` in a child process against the fake API
// (a real HTTP server on 127.0.0.1), checking exit codes, stdout and stderr.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT, startFakeApi, TOKEN } from './fake-api.ts';
import type { FakeApi } from './fake-api.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const NODE = `${repo}node_modules/.bin/node`;
const BIN = `${repo}bin/openvbs.mjs`;

let api: FakeApi;
// OPENVBS_HOME of every run: empty unless a test writes a connection file into it.
let home: string;

beforeAll(async () => {
  api = await startFakeApi();
  home = mkdtempSync(join(tmpdir(), 'openvbs-cli-'));
});

afterAll(async () => {
  await api?.close();
  rmSync(home, { recursive: true, force: true });
});

function writeConnectionFile(connection: { url: string; project_id: string; token: string }): string {
  const dir = mkdtempSync(join(home, 'home-'));
  writeFileSync(join(dir, 'connection.json'), JSON.stringify(connection), { mode: 0o600 });
  return dir;
}

const NO_CONNECTION_ENV = { OPENVBS_URL: undefined, OPENVBS_PROJECT: undefined, OPENVBS_TOKEN: undefined };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function openvbs(args: string[], env: Record<string, string | undefined> = {}, node = NODE): Promise<Result> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, OPENVBS_HOME: home, OPENVBS_URL: api.url, OPENVBS_PROJECT: PROJECT, OPENVBS_TOKEN: TOKEN, ...env })) {
    if (v !== undefined) childEnv[k] = v;
  }
  return new Promise((resolve) => {
    execFile(node, [BIN, ...args], { env: childEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A loopback port with nothing listening. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const noStack = (r: Result) => expect(r.stderr).not.toMatch(/\n\s+at /);

describe('openvbs (child process)', () => {
  it('prints help with --help and exits 0', async () => {
    const r = await openvbs(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: openvbs \[options\] \[command\]/);
    expect(r.stdout).toMatch(/^ {2}backup create\|list\|show\|delete\|restore\|share\|shares\|unshare /m);
  });

  it('prints the help of a subcommand with its options', async () => {
    const r = await openvbs(['backup', 'create', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: openvbs backup create \[options\]\n/);
    expect(r.stdout).toMatch(/^ {2}--volume <id> +the volume to back up$/m);
    expect(r.stdout).toMatch(/^ {2}--timeout <seconds> +give up waiting/m);
    expect(r.stdout).toMatch(/^Global Options:$/m);
  });

  it('prints a usage error as one line and exits 2', async () => {
    const r = await openvbs(['backup', 'create', '--volume', 'vol-1']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("error: required option '--name <name>' not specified (see `openvbs backup create --help`)\n");
    const unknown = await openvbs(['snapshot', 'list']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("error: unknown command 'snapshot' (see `openvbs --help`)\n");
  });

  it('prints a usage error as JSON with --json', async () => {
    const r = await openvbs(['--json', 'backup', 'create', '--volume', 'vol-1']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'usage', message: "required option '--name <name>' not specified" } });
  });

  it('sends the token and prints a show as key: value', async () => {
    const r = await openvbs(['volume', 'show', 'vol-1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^id: +vol-1$/m);
    expect(r.stdout).toMatch(/^size_bytes: +1073741824$/m);
    expect(api.requests.at(-1)).toMatchObject({ method: 'GET', path: `/v2/${PROJECT}/volumes/vol-1`, token: TOKEN });
  });

  it('takes --url, --project and --token over the environment', async () => {
    const r = await openvbs(['volume', 'list', '--url', api.url, '--project', PROJECT, '--token', TOKEN], {
      OPENVBS_URL: 'http://127.0.0.1:1',
      OPENVBS_PROJECT: 'other',
      OPENVBS_TOKEN: 'wrong',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ID +NAME +STATUS/);
  });

  it('prints the raw API JSON with --json', async () => {
    const r = await openvbs(['backup', 'list', '--json']);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout);
    expect(body.backups.map((b: { id: string }) => b.id)).toEqual(['bk-1', 'bk-2']);
    expect(body.backups[0]['os-bak-tenant-attr:tenant_id']).toBe(PROJECT);
    expect(r.stderr).toBe('');
  });

  it('prints backups as a table', async () => {
    const r = await openvbs(['backup', 'list']);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'ID    NAME       STATUS     VOLUME  SIZE_GB  STORED    TYPE         CREATED',
      'bk-1  nightly-1  available  vol-1   1        123.5 MB  full         2025-01-01T10:00:00.000Z',
      'bk-2  nightly-2  available  vol-1   1        4.2 MB    incremental  2025-01-01T10:00:00.000Z',
    ]);
  });

  it('prints an API 400 as error: code: message and exits 1', async () => {
    const r = await openvbs(['backup', 'create', '--volume', 'vol-1', '--name', 'autobk_manual']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: VolumeBackup.0005: backup name must not start with "auto"\n');
  });

  it('prints an API error as JSON on stderr with --json and exits 1', async () => {
    const r = await openvbs(['backup', 'create', '--volume', 'vol-1', '--name', 'autobk_manual', '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'VolumeBackup.0005', message: 'backup name must not start with "auto"' } });
  });

  it('prints a 401 with a hint about the token and exits 1', async () => {
    const r = await openvbs(['volume', 'list'], { OPENVBS_TOKEN: 'not-the-token' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: OpenVBS\.0401: missing or invalid X-Auth-Token\nhint: check the token/);
    noStack(r);
  });

  it('follows backup create --wait from RUNNING to SUCCESS', async () => {
    const r = await openvbs(['backup', 'create', '--volume', 'vol-1', '--name', 'weekly', '--wait']);
    expect(r.code).toBe(0);
    // stderr is not a terminal: no live bar, one final line.
    expect(r.stderr).toMatch(/^backup job (job-\d+) SUCCESS in 4\.0 s, 200\.0 MB at 50\.0 MB\/s \(backup_id bk-job-\d+, volume_id vol-1\)\n$/);
    expect(r.stdout).toMatch(/^status: +SUCCESS$/m);
    const jobId = /job (job-\d+)/.exec(r.stderr)![1]!;
    const polls = api.requests.filter((q) => q.path === `/v1/${PROJECT}/jobs/${jobId}`);
    expect(polls.length).toBe(4); // INIT, RUNNING, RUNNING 50 %, SUCCESS
  });

  it('prints the final job as JSON with --wait --json', async () => {
    const r = await openvbs(['backup', 'create', '--volume', 'vol-1', '--name', 'weekly', '--wait', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'SUCCESS', progress: 100, bytes_done: 200e6, entities: { volume_id: 'vol-1' } });
  });

  it('exits 1 with the fail_reason when the job fails', async () => {
    const r = await openvbs(['backup', 'create', '--volume', 'vol-broken', '--name', 'doomed', '--wait']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^backup job job-\d+ FAIL after 2\.0 s \(backup_id bk-job-\d+, volume_id vol-broken\)\n/);
    expect(r.stderr).toContain('error: VolumeBackup.0013: volume read failed at block 42: EIO\n');
    noStack(r);
  });

  it('job wait follows an existing job; job show prints it', async () => {
    const started = await openvbs(['backup', 'create', '--volume', 'vol-1', '--name', 'later', '--json']);
    const { job_id: jobId } = JSON.parse(started.stdout) as { job_id: string };
    const shown = await openvbs(['job', 'show', jobId]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^job_id: +${jobId}$`, 'm'));
    expect(shown.stdout).toMatch(/^status: +INIT$/m);
    const waited = await openvbs(['job', 'wait', jobId, '--timeout', '30']);
    expect(waited.code).toBe(0);
    expect(waited.stderr).toMatch(/SUCCESS/);
  });

  it('job cancel ends a running job FAIL "cancelled"; an ended one is a 409 and exit 1', async () => {
    const started = await openvbs(['backup', 'create', '--volume', 'vol-1', '--name', 'cut', '--json']);
    const { job_id: jobId } = JSON.parse(started.stdout) as { job_id: string };
    const cancelled = await openvbs(['job', 'cancel', jobId]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/^status: +FAIL$/m);
    expect(cancelled.stdout).toMatch(/^fail_reason: +cancelled$/m);
    const again = await openvbs(['job', 'cancel', jobId, '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr)).toMatchObject({ error: { code: 'OpenVBS.1005' } });
  });

  it('exits 1 for an unknown job', async () => {
    const r = await openvbs(['job', 'wait', 'job-nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: common.0011: job job-nope not found\n');
  });

  it('names the URL when the server is not there', async () => {
    const port = await closedPort();
    const r = await openvbs(['backup', 'list'], { OPENVBS_URL: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: cannot reach the OpenVBS API at http://127.0.0.1:${port}: connection refused (ECONNREFUSED); is the server running? (\`npm start\` starts one)\n`,
    );
  });

  it('exits 2 saying how to get a service when none is found', async () => {
    const r = await openvbs(['volume', 'list'], NO_CONNECTION_ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: no OpenVBS service found: start one with `npm start` or set OPENVBS_URL, OPENVBS_PROJECT and OPENVBS_TOKEN ' +
        `(or --url, --project, --token); there is no ${join(home, 'connection.json')}\n`,
    );
  });

  it("finds the local service in $OPENVBS_HOME/connection.json with nothing exported", async () => {
    const dir = writeConnectionFile({ url: api.url, project_id: PROJECT, token: TOKEN });
    const r = await openvbs(['volume', 'show', 'vol-1'], { ...NO_CONNECTION_ENV, OPENVBS_HOME: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^id: +vol-1$/m);
    expect(api.requests.at(-1)).toMatchObject({ path: `/v2/${PROJECT}/volumes/vol-1`, token: TOKEN });
  });

  it('lets the environment override the connection file', async () => {
    // The file's token is stale; the exported one is used.
    const stale = writeConnectionFile({ url: api.url, project_id: PROJECT, token: 'stale-token' });
    const r = await openvbs(['volume', 'list', '--json'], { ...NO_CONNECTION_ENV, OPENVBS_HOME: stale, OPENVBS_TOKEN: TOKEN });
    expect(r.code).toBe(0);
    expect(api.requests.at(-1)).toMatchObject({ path: `/v2/${PROJECT}/volumes`, token: TOKEN });

    // The file names a service that is gone; the exported one is used, with the exported settings.
    const gone = writeConnectionFile({ url: `http://127.0.0.1:${await closedPort()}`, project_id: 'other', token: 'other-token' });
    const other = await openvbs(['backup', 'show', 'bk-1', '--json'], { OPENVBS_HOME: gone });
    expect(other.code).toBe(0);
    expect(JSON.parse(other.stdout).backup.id).toBe('bk-1');
  });

  it('deletes a volume and creates and lists keys', async () => {
    api.volumes.push({ ...api.volumes[0]!, id: 'vol-spare' });
    const deleted = await openvbs(['volume', 'delete', 'vol-spare']);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe('volume vol-spare deleted\n');
    expect(api.volumes.map((v) => v.id)).not.toContain('vol-spare');
    const created = await openvbs(['key', 'create', '--alias', 'alias/child', '--json']);
    expect(created.code).toBe(0);
    const { key } = JSON.parse(created.stdout) as { key: { id: string } };
    const listed = await openvbs(['key', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${key.id} +alias/child +true `, 'm'));
  });

  it('runs under a Node without type stripping by re-running itself with the pinned Node', async () => {
    const r = await openvbs(['backup', 'show', 'bk-1', '--json'], {}, process.env.OPENVBS_TEST_OLD_NODE ?? '/usr/bin/node');
    // Where no older node is installed the default path does not exist: nothing to check.
    if (r.code === -1) return;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).backup.id).toBe('bk-1');
  });
});

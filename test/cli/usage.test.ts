// The command line itself, in-process: what each command reads from its options and arguments (seen
// in the requests the fake API records), the usage errors (one line, exit 2, no request sent) and help.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../lib/cli/context.ts';
import { buildProgram, run } from '../../lib/cli/main.ts';
import { CliContext } from '../../lib/cli/context.ts';
import { PROJECT, startFakeApi, TOKEN } from './fake-api.ts';
import type { FakeApi } from './fake-api.ts';

let api: FakeApi;
let home: string;

beforeAll(async () => {
  api = await startFakeApi();
  home = mkdtempSync(join(tmpdir(), 'openvbs-cli-'));
});

afterAll(async () => {
  await api?.close();
  rmSync(home, { recursive: true, force: true });
});

function io(stdout: string[], stderr: string[], env: Record<string, string | undefined> = {}): CliIO {
  let t = 0;
  return {
    stdout: { write: (s: string) => stdout.push(s), columns: 120 },
    stderr: { write: (s: string) => stderr.push(s) },
    env: { OPENVBS_HOME: home, OPENVBS_URL: api.url, OPENVBS_PROJECT: PROJECT, OPENVBS_TOKEN: TOKEN, ...env },
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

async function cli(argv: string[], env?: Record<string, string | undefined>) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await run(argv, io(stdout, stderr, env));
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** Runs argv and returns the one request it sent. */
async function sent(argv: string[]) {
  const before = api.requests.length;
  const r = await cli(argv);
  expect(r.stderr.startsWith('error')).toBe(false);
  expect(api.requests.length).toBe(before + 1);
  return api.requests.at(-1)!;
}

/** Runs argv, expecting a usage error without any request; returns the error line. */
async function usageError(argv: string[]): Promise<string> {
  const before = api.requests.length;
  const r = await cli(argv);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(api.requests.length).toBe(before);
  expect(r.stderr.split('\n')).toHaveLength(2);
  return r.stderr.trimEnd();
}

describe('options and arguments', () => {
  it('reads the global options anywhere on the line', async () => {
    const r = await cli(['--url', api.url, 'volume', 'list', '--json', '--token=' + TOKEN, '--project', PROJECT], {
      OPENVBS_URL: 'http://127.0.0.1:1',
      OPENVBS_PROJECT: 'other',
      OPENVBS_TOKEN: 'wrong',
    });
    expect(r.code).toBe(0);
    expect(api.requests.at(-1)).toMatchObject({ method: 'GET', path: `/v2/${PROJECT}/volumes`, token: TOKEN });
    expect(JSON.parse(r.stdout).volumes[0].id).toBe('vol-1');
  });

  it('token create, list and revoke', async () => {
    expect((await sent(['token', 'create'])).body).toEqual({ token: {} });
    expect((await sent(['token', 'create', '--description', 'ci'])).body).toEqual({ token: { description: 'ci' } });
    expect((await sent(['token', 'create', '--scope', 'user', '--expires-in', '60'])).body).toEqual({ token: { scope: 'user', expires_in: 60 } });
    expect(await usageError(['token', 'create', '--scope', 'root'])).toMatch(/--scope <scope>.*Allowed choices are admin, user/);
    expect(await usageError(['token', 'create', '--expires-in', '0'])).toMatch(/--expires-in <seconds>.*must be a positive integer/);
    expect(await sent(['token', 'list'])).toMatchObject({ method: 'GET', path: `/v1/${PROJECT}/tokens` });
    expect(await usageError(['token', 'revoke'])).toMatch(/missing required argument 'id'/);
  });

  it('notify subscribe, list and unsubscribe', async () => {
    expect(await sent(['notify', 'subscribe', '--protocol', 'email', '--endpoint', 'ops@example.com'])).toMatchObject({
      method: 'POST',
      path: `/v1/${PROJECT}/subscriptions`,
      body: { subscription: { protocol: 'email', endpoint: 'ops@example.com' } },
    });
    expect((await sent(['notify', 'subscribe', '--protocol', 'https', '--endpoint', 'https://h.example/x', '--failures-only'])).body).toEqual({
      subscription: { protocol: 'https', endpoint: 'https://h.example/x', failures_only: true },
    });
    expect(await usageError(['notify', 'subscribe', '--protocol', 'sqs', '--endpoint', 'x'])).toMatch(/--protocol <protocol>.*Allowed choices are email, sms, https, http/);
    expect(await usageError(['notify', 'subscribe', '--protocol', 'email'])).toMatch(/required option '--endpoint <endpoint>' not specified/);
    expect(await sent(['notify', 'list'])).toMatchObject({ method: 'GET', path: `/v1/${PROJECT}/subscriptions` });
    expect(await sent(['notify', 'unsubscribe', 'sub-1'])).toMatchObject({ method: 'DELETE', path: `/v1/${PROJECT}/subscriptions/sub-1` });
    expect(await usageError(['notify', 'unsubscribe'])).toMatch(/missing required argument 'id'/);
  });

  it('volume create with exactly one of --size, --size-bytes, --path', async () => {
    expect((await sent(['volume', 'create', '--name', 'd', '--size', '10'])).body).toEqual({ volume: { name: 'd', size: 10 } });
    expect((await sent(['volume', 'create', '--name', 'd', '--size-bytes', '4096', '--kms-key-id', 'k1'])).body).toEqual({
      volume: { name: 'd', size_bytes: 4096, kms_key_id: 'k1' },
    });
    expect((await sent(['volume', 'create', '--name', 'd', '--path', '/dev/sdb'])).body).toEqual({ volume: { name: 'd', path: '/dev/sdb' } });
    expect(await usageError(['volume', 'create', '--name', 'd'])).toBe('error: missing --size, --size-bytes or --path (see `openvbs volume create --help`)');
    expect(await usageError(['volume', 'create', '--name', 'd', '--size', '1', '--path', '/x'])).toMatch(
      /^error: option '--size <GB>' cannot be used with option '--path <path>'/,
    );
    expect(await usageError(['volume', 'create', '--name', 'd', '--size-bytes', '1', '--path', '/x'])).toMatch(/cannot be used with/);
    expect(await usageError(['volume', 'create', '--size', '1'])).toMatch(/^error: required option '--name <name>' not specified/);
    expect(await usageError(['volume', 'create', '--name', '', '--size', '1'])).toMatch(/--name <name>.*must not be empty/);
  });

  it('rejects sizes and limits that are not positive integers', async () => {
    for (const bad of ['0', '-1', '1.5', 'ten', '', '9007199254740993']) {
      expect(await usageError(['volume', 'create', '--name', 'd', `--size=${bad}`])).toMatch(/--size <GB>.*must be a positive integer/);
    }
    expect(await usageError(['backup', 'list', '--limit', '0'])).toMatch(/--limit <n>.*must be a positive integer/);
  });

  it('backup create, list, show, delete and restore', async () => {
    expect((await sent(['backup', 'create', '--volume', 'vol-1', '--name', 'b1'])).body).toEqual({ backup: { volume_id: 'vol-1', name: 'b1' } });
    expect((await sent(['backup', 'list', '--status', 'available', '--volume', 'v1', '--name', 'n', '--limit', '5', '--marker', 'm'])).query).toEqual({
      status: 'available',
      volume_id: 'v1',
      name: 'n',
      limit: '5',
      marker: 'm',
    });
    expect(await sent(['backup', 'show', 'bk-1'])).toMatchObject({ method: 'GET', path: `/v2/${PROJECT}/backups/bk-1` });
    expect(await sent(['backup', 'delete', 'bk-1'])).toMatchObject({ method: 'POST', path: `/v2/${PROJECT}/cloudbackups/bk-1` });
    expect(await sent(['backup', 'restore', 'bk-1', '--volume', 'vol-1'])).toMatchObject({
      path: `/v2/${PROJECT}/cloudbackups/bk-1/restore`,
      body: { restore: { volume_id: 'vol-1' } },
    });
  });

  it('--wait follows the job and --timeout takes seconds', async () => {
    api.addJob([{ job_id: 'job-forever', job_type: 'bksCreateBackup', status: 'RUNNING', entities: {} }]);
    const r = await cli(['job', 'wait', 'job-forever', '--timeout', '1.5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('still running after 1.5 s');
    expect(await usageError(['job', 'wait', 'j1', '--timeout', '0'])).toMatch(/--timeout <seconds>.*must be a positive number of seconds/);
    expect(await usageError(['backup', 'delete', 'a', '--timeout', '5'])).toBe('error: --timeout needs --wait (see `openvbs backup delete --help`)');
  });

  it('key create with and without alias and description', async () => {
    expect((await sent(['key', 'create'])).body).toEqual({ key: {} });
    expect((await sent(['key', 'create', '--alias', 'alias/k-a', '--description', 'for a'])).body).toEqual({ key: { alias: 'alias/k-a', description: 'for a' } });
    expect(await usageError(['key', 'create', '--alias', ''])).toMatch(/--alias <alias>.*must not be empty/);
  });
});

describe('usage errors', () => {
  it('name what is wrong in one line and point at the help of the command', async () => {
    expect(await usageError([])).toBe('error: no command given; commands: token, key, volume, server, backup, server-backup, job, check, gc, notify, tick (see `openvbs --help`)');
    expect(await usageError(['frobnicate'])).toBe("error: unknown command 'frobnicate' (see `openvbs --help`)");
    expect(await usageError(['backup'])).toBe(
      'error: "openvbs backup" needs a subcommand: create, list, show, delete, restore, share, shares, unshare (see `openvbs backup --help`)',
    );
    expect(await usageError(['backup', 'explode'])).toBe("error: unknown command 'explode' (see `openvbs backup --help`)");
    expect(await usageError(['backup', 'creat'])).toBe("error: unknown command 'creat' (Did you mean create?) (see `openvbs backup --help`)");
    expect(await usageError(['backup', 'show'])).toBe("error: missing required argument 'id' (see `openvbs backup show --help`)");
    expect(await usageError(['backup', 'show', 'a', 'b'])).toMatch(/^error: too many arguments for 'show'/);
    // Commander may add a suggestion ("Did you mean …?") before the pointer to the help.
    expect(await usageError(['backup', 'show', 'a', '--full'])).toMatch(/^error: unknown option '--full'.* \(see `openvbs backup show --help`\)$/);
    expect(await usageError(['backup', 'list', '--colour'])).toBe("error: unknown option '--colour' (see `openvbs backup list --help`)");
    expect(await usageError(['backup', 'create', '--volume'])).toBe("error: option '--volume <id>' argument missing (see `openvbs backup create --help`)");
    expect(await usageError(['volume', 'delete'])).toBe("error: missing required argument 'id' (see `openvbs volume delete --help`)");
    expect(await usageError(['--url', '', 'volume', 'list'])).toMatch(/^error: option '--url <url>' argument '' is invalid/);
  });

  it('come out as JSON with --json', async () => {
    const r = await cli(['backup', 'show', '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'usage', message: "missing required argument 'id'" } });
    const none = await cli(['--json']);
    expect(JSON.parse(none.stderr)).toEqual({ error: { code: 'usage', message: 'no command given; commands: token, key, volume, server, backup, server-backup, job, check, gc, notify, tick' } });
  });
});

describe('help', () => {
  it('lists every command in the overview', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: openvbs \[options\] \[command\]/);
    for (const line of ['token create|list|revoke', 'key create|list', 'volume create|list|show|delete', 'server create|list|show|start|stop|delete|attach|detach|hooks', 'backup create|list|show|delete|restore|share|shares|unshare', 'job show|cancel|wait']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${line.replace(/\|/g, '\\|')} `, 'm'));
    }
    expect(r.stdout).toContain('connection.json');
    expect((await cli(['-h'])).stdout).toBe(r.stdout);
  });

  it('shows a subcommand with its options, its arguments and the global options', async () => {
    const r = await cli(['backup', 'create', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('Usage: openvbs backup create [options]');
    for (const option of ['--volume <id>', '--name <name>', '--description <text>', '--full', '--wait', '--timeout <seconds>', '--url <url>', '--json']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${option} +\\S`, 'm'));
    }
    expect(r.stdout).not.toContain('volume list');
    const restore = await cli(['backup', 'restore', '-h']);
    expect(restore.stdout.split('\n')[0]).toBe('Usage: openvbs backup restore [options] <id>');
    expect(restore.stdout).toMatch(/^ {2}id +backup id$/m);
    // `help` names a command too.
    expect((await cli(['backup', 'help', 'restore'])).stdout).toBe(restore.stdout);
  });

  it('exists for every subcommand and lists each of its options', async () => {
    const program = buildProgram(new CliContext(io([], []), () => ({})), io([], []));
    const leaves = program.commands.flatMap((group) => group.commands.map((leaf) => ({ words: [group.name(), leaf.name()], leaf })));
    expect(leaves.map((l) => l.words.join(' '))).toEqual([
      'token create',
      'token list',
      'token revoke',
      'key create',
      'key list',
      'volume create',
      'volume list',
      'volume show',
      'volume delete',
      'server create',
      'server list',
      'server show',
      'server start',
      'server stop',
      'server delete',
      'server attach',
      'server detach',
      'server hooks',
      'backup create',
      'backup list',
      'backup show',
      'backup delete',
      'backup restore',
      'backup share',
      'backup shares',
      'backup unshare',
      'server-backup create',
      'server-backup list',
      'server-backup show',
      'server-backup delete',
      'server-backup restore',
      'job show',
      'job cancel',
      'job wait',
      'notify subscribe',
      'notify list',
      'notify unsubscribe',
    ]);
    for (const { words, leaf } of leaves) {
      const r = await cli([...words, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^Usage: openvbs ${words.join(' ')}( |$)`));
      expect(r.stdout).toContain(leaf.description());
      for (const option of leaf.options) expect(r.stdout).toContain(option.flags);
    }
  });

  it('prints the version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

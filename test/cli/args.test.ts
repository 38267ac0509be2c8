import { describe, expect, it } from 'vitest';
import { parseArgs, resolveConnection, usage, UsageError } from '../../lib/cli/args.ts';

function usageError(argv: string[]): UsageError {
  try {
    parseArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error(`parsed: ${argv.join(' ')}`);
}

describe('parseArgs', () => {
  it('reads global options anywhere on the line', () => {
    const { globals, command } = parseArgs(['--url', 'http://h:1', 'volume', 'list', '--json', '--token=t', '--project', 'p']);
    expect(globals).toEqual({ url: 'http://h:1', project: 'p', token: 't', json: true });
    expect(command).toEqual({ kind: 'volume-list' });
  });

  it('parses token create', () => {
    expect(parseArgs(['token', 'create']).command).toEqual({ kind: 'token-create' });
    expect(parseArgs(['token', 'create', '--description', 'ci']).command).toEqual({ kind: 'token-create', description: 'ci' });
  });

  it('parses volume create with exactly one of --size, --size-bytes, --path', () => {
    expect(parseArgs(['volume', 'create', '--name', 'd', '--size', '10']).command).toEqual({ kind: 'volume-create', name: 'd', size: 10 });
    expect(parseArgs(['volume', 'create', '--name', 'd', '--size-bytes', '4096', '--kms-key-id', 'k1']).command).toEqual({
      kind: 'volume-create',
      name: 'd',
      sizeBytes: 4096,
      kmsKeyId: 'k1',
    });
    expect(parseArgs(['volume', 'create', '--name', 'd', '--path', '/dev/sdb']).command).toEqual({ kind: 'volume-create', name: 'd', path: '/dev/sdb' });
    expect(usageError(['volume', 'create', '--name', 'd']).message).toBe('missing --size, --size-bytes or --path');
    expect(usageError(['volume', 'create', '--name', 'd', '--size', '1', '--path', '/x']).message).toBe('give only one of --size, --path');
    expect(usageError(['volume', 'create', '--size', '1']).message).toBe('missing --name');
  });

  it('rejects sizes and limits that are not positive integers', () => {
    for (const bad of ['0', '-1', '1.5', 'ten', '', '9007199254740993']) {
      expect(usageError(['volume', 'create', '--name', 'd', `--size=${bad}`]).message).toMatch(/--size must be a positive integer/);
    }
    // A value that looks like an option is refused by util.parseArgs itself.
    expect(usageError(['volume', 'create', '--name', 'd', '--size', '-1']).message).toBe("Option '--size' argument is ambiguous.");
    expect(usageError(['backup', 'list', '--limit', '0']).message).toMatch(/--limit must be a positive integer/);
  });

  it('parses backup create, list, show, delete and restore', () => {
    expect(parseArgs(['backup', 'create', '--volume', 'v1', '--name', 'b1']).command).toEqual({
      kind: 'backup-create',
      volumeId: 'v1',
      name: 'b1',
      full: false,
    });
    expect(parseArgs(['backup', 'create', '--volume', 'v1', '--name', 'b1', '--description', 'x', '--full', '--wait', '--timeout', '1.5']).command).toEqual({
      kind: 'backup-create',
      volumeId: 'v1',
      name: 'b1',
      description: 'x',
      full: true,
      wait: { timeoutMs: 1500 },
    });
    expect(parseArgs(['backup', 'list', '--status', 'available', '--volume', 'v1', '--name', 'n', '--limit', '5', '--marker', 'm']).command).toEqual({
      kind: 'backup-list',
      status: 'available',
      volumeId: 'v1',
      name: 'n',
      limit: 5,
      marker: 'm',
    });
    expect(parseArgs(['backup', 'show', 'b1']).command).toEqual({ kind: 'backup-show', id: 'b1' });
    expect(parseArgs(['backup', 'delete', 'b1', '--wait']).command).toEqual({ kind: 'backup-delete', id: 'b1', wait: {} });
    expect(parseArgs(['backup', 'restore', 'b1', '--volume', 'v2']).command).toEqual({ kind: 'backup-restore', id: 'b1', volumeId: 'v2' });
  });

  it('parses job show and job wait', () => {
    expect(parseArgs(['job', 'show', 'j1']).command).toEqual({ kind: 'job-show', id: 'j1' });
    expect(parseArgs(['job', 'wait', 'j1']).command).toEqual({ kind: 'job-wait', id: 'j1', wait: {} });
    expect(parseArgs(['job', 'wait', 'j1', '--timeout', '30']).command).toEqual({ kind: 'job-wait', id: 'j1', wait: { timeoutMs: 30_000 } });
    expect(usageError(['job', 'wait', 'j1', '--timeout', '0']).message).toMatch(/--timeout must be a positive number of seconds/);
  });

  it('names what is wrong and the command whose usage to show', () => {
    expect(usageError([]).message).toBe('no command given');
    expect(usageError(['frobnicate']).message).toBe('unknown command "frobnicate"');
    const sub = usageError(['backup']);
    expect(sub.message).toMatch(/"backup" needs a subcommand: create, list, show, delete, restore/);
    expect(sub.topic).toEqual(['backup']);
    expect(usageError(['backup', 'explode']).message).toBe('unknown command "backup explode"');
    const missing = usageError(['backup', 'show']);
    expect(missing.message).toBe('missing ID');
    expect(missing.topic).toEqual(['backup', 'show']);
    expect(usageError(['backup', 'show', 'a', 'b']).message).toBe('unexpected argument "b"');
    expect(usageError(['backup', 'show', 'a', '--full']).message).toBe('"backup show" does not take --full');
    expect(usageError(['backup', 'delete', 'a', '--timeout', '5']).message).toBe('--timeout needs --wait');
    const unknown = usageError(['backup', 'list', '--colour']);
    expect(unknown.message).toMatch(/Unknown option '--colour'/);
    expect(unknown.topic).toEqual(['backup', 'list']);
    expect(usageError(['backup', 'create', '--volume']).message).toMatch(/--volume/);
  });

  it('turns --help and `help` into help for the command', () => {
    expect(parseArgs(['--help']).command).toEqual({ kind: 'help', topic: [] });
    expect(parseArgs(['-h']).command).toEqual({ kind: 'help', topic: [] });
    expect(parseArgs(['backup', '--help']).command).toEqual({ kind: 'help', topic: ['backup'] });
    expect(parseArgs(['backup', 'create', '-h']).command).toEqual({ kind: 'help', topic: ['backup', 'create'] });
    expect(parseArgs(['help', 'job', 'wait']).command).toEqual({ kind: 'help', topic: ['job', 'wait'] });
    expect(parseArgs(['--version']).command).toEqual({ kind: 'version' });
  });
});

describe('usage', () => {
  it('lists every command in the overview', () => {
    const text = usage();
    for (const c of ['token create', 'volume create', 'volume list', 'volume show', 'backup create', 'backup list', 'backup show', 'backup delete', 'backup restore', 'job show', 'job wait']) {
      expect(text).toContain(`  ${c}`);
    }
    expect(text).toContain('OPENVBS_URL');
  });

  it('shows one command with its options', () => {
    const text = usage(['backup', 'create']);
    expect(text.split('\n')[0]).toBe('usage: openvbs backup create --volume ID --name N [--description D] [--full] [--wait [--timeout S]] [global options]');
    expect(text).toContain('--full');
    expect(text).not.toContain('volume list');
  });
});

describe('resolveConnection', () => {
  const env = { OPENVBS_URL: 'http://127.0.0.1:8080', OPENVBS_PROJECT: 'p-env', OPENVBS_TOKEN: 't-env' };

  it('takes the environment, flags winning', () => {
    expect(resolveConnection({ json: false }, env)).toEqual({ url: 'http://127.0.0.1:8080', project: 'p-env', token: 't-env' });
    expect(resolveConnection({ json: false, project: 'p-flag', token: 't-flag', url: 'https://api.example/prod' }, env)).toEqual({
      url: 'https://api.example/prod',
      project: 'p-flag',
      token: 't-flag',
    });
  });

  it('names every missing setting and does not show usage', () => {
    const err = (() => {
      try {
        resolveConnection({ json: false }, { OPENVBS_URL: 'http://x' });
      } catch (e) {
        return e as UsageError;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect(err?.message).toContain('OPENVBS_PROJECT (or --project)');
    expect(err?.message).toContain('OPENVBS_TOKEN (or --token)');
    expect(err?.message).not.toContain('OPENVBS_URL');
    expect(err?.topic).toBeNull();
  });

  it('rejects a URL that is not http(s)', () => {
    expect(() => resolveConnection({ json: false, url: 'ftp://x' }, env)).toThrow(/not http/);
    expect(() => resolveConnection({ json: false, url: 'not a url' }, env)).toThrow(/invalid server URL/);
  });
});

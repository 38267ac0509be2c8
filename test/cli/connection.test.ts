import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectionFilePath, DEFAULT_HOME, readConnectionFile, resolveConnection } from '../../lib/cli/connection.ts';
import { CliError, EXIT_USAGE } from '../../lib/cli/errors.ts';

let home: string;

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'openvbs-conn-'));
});

afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

const LOCAL = { url: 'http://127.0.0.1:8080', project_id: 'p-file', token: 't-file' };

function writeConnection(content: unknown = LOCAL) {
  writeFileSync(join(home, 'connection.json'), typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
}

function failure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('did not fail');
}

describe('connectionFilePath', () => {
  it('is connection.json in OPENVBS_HOME, by default .openvbs in the repository', () => {
    expect(connectionFilePath({ OPENVBS_HOME: home })).toBe(join(home, 'connection.json'));
    expect(DEFAULT_HOME).toBe(resolve(import.meta.dirname, '../..', '.openvbs'));
    expect(connectionFilePath({})).toBe(join(DEFAULT_HOME, 'connection.json'));
  });
});

describe('resolveConnection', () => {
  const env = { OPENVBS_URL: 'https://api.example/prod', OPENVBS_PROJECT: 'p-env', OPENVBS_TOKEN: 't-env' };

  it('takes the environment, each flag winning over its variable', () => {
    expect(resolveConnection({}, { ...env, OPENVBS_HOME: home })).toEqual({ url: 'https://api.example/prod', project: 'p-env', token: 't-env' });
    expect(resolveConnection({ project: 'p-flag', token: 't-flag', url: 'http://other:1' }, { ...env, OPENVBS_HOME: home })).toEqual({
      url: 'http://other:1',
      project: 'p-flag',
      token: 't-flag',
    });
  });

  it('finds the local service in the connection file when nothing else is set', () => {
    writeConnection();
    expect(resolveConnection({}, { OPENVBS_HOME: home })).toEqual({ url: LOCAL.url, project: 'p-file', token: 't-file' });
  });

  it('lets variables and flags override single settings of the file', () => {
    writeConnection();
    expect(resolveConnection({}, { OPENVBS_HOME: home, OPENVBS_TOKEN: 't-env' })).toEqual({ url: LOCAL.url, project: 'p-file', token: 't-env' });
    expect(resolveConnection({ project: 'p-flag' }, { OPENVBS_HOME: home, OPENVBS_PROJECT: 'p-env' })).toMatchObject({ project: 'p-flag', token: 't-file' });
    // The same service named with a trailing slash still takes the file's token.
    expect(resolveConnection({ url: `${LOCAL.url}/` }, { OPENVBS_HOME: home })).toMatchObject({ project: 'p-file', token: 't-file' });
  });

  it('never sends the file\'s token to another service', () => {
    writeConnection();
    const err = failure(() => resolveConnection({}, { OPENVBS_HOME: home, OPENVBS_URL: 'https://api.example/prod' }));
    expect(err.message).toBe('not configured for https://api.example/prod: set OPENVBS_PROJECT (or --project), OPENVBS_TOKEN (or --token)');
    expect(err.exitCode).toBe(EXIT_USAGE);
    expect(resolveConnection({ url: 'https://api.example/prod' }, { ...env, OPENVBS_HOME: home }).token).toBe('t-env');
  });

  it('treats empty variables as unset', () => {
    writeConnection();
    expect(resolveConnection({}, { OPENVBS_HOME: home, OPENVBS_URL: '', OPENVBS_TOKEN: '' })).toEqual({ url: LOCAL.url, project: 'p-file', token: 't-file' });
  });

  it('says how to get a service when there is none', () => {
    const err = failure(() => resolveConnection({}, { OPENVBS_HOME: home }));
    expect(err.code).toBe('not_configured');
    expect(err.exitCode).toBe(EXIT_USAGE);
    expect(err.message).toMatch(/^no OpenVBS service found: start one with `npm start` or set OPENVBS_URL, OPENVBS_PROJECT and OPENVBS_TOKEN/);
    expect(err.message).toContain(join(home, 'connection.json'));
  });

  it('rejects a URL that is not http(s)', () => {
    expect(failure(() => resolveConnection({ url: 'ftp://x' }, { ...env, OPENVBS_HOME: home })).message).toMatch(/not http/);
    expect(failure(() => resolveConnection({ url: 'not a url' }, { ...env, OPENVBS_HOME: home })).message).toMatch(/invalid server URL/);
  });
});

describe('readConnectionFile', () => {
  it('is undefined when there is no file or no home', () => {
    expect(readConnectionFile(join(home, 'connection.json'))).toBeUndefined();
    expect(readConnectionFile(join(home, 'missing', 'connection.json'))).toBeUndefined();
  });

  it('names the file when it is not a connection file', () => {
    for (const bad of ['{"url": "http://x"', JSON.stringify({ url: 'http://x', project_id: 'p' }), JSON.stringify({ ...LOCAL, token: '' }), '[]']) {
      writeConnection(bad);
      const err = failure(() => readConnectionFile(join(home, 'connection.json')));
      expect(err.message).toBe(`${join(home, 'connection.json')} is not a connection file: expected {"url", "project_id", "token"}; restart the service or remove it`);
    }
  });

  it('names the file when it cannot be read', () => {
    mkdirSync(join(home, 'connection.json'));
    expect(failure(() => readConnectionFile(join(home, 'connection.json'))).message).toMatch(/^cannot read .*connection\.json: EISDIR/);
  });
});

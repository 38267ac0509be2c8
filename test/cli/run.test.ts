// `run` in-process against the fake API, with a fake clock: output shapes, the progress display on a
// terminal, the request bodies the commands send, and errors in text and in JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../lib/cli/context.ts';
import { run } from '../../lib/cli/main.ts';
import { PROJECT, startFakeApi, TOKEN } from './fake-api.ts';
import type { FakeApi } from './fake-api.ts';

let api: FakeApi;
// An empty home: no connection file of a real local service is found.
let home: string;

beforeAll(async () => {
  api = await startFakeApi();
  home = mkdtempSync(join(tmpdir(), 'openvbs-cli-'));
});

afterAll(async () => {
  await api?.close();
  rmSync(home, { recursive: true, force: true });
});

async function cli(argv: string[], options: { tty?: boolean; env?: Record<string, string | undefined>; signal?: AbortSignal } = {}) {
  let t = 0;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: options.tty ?? false, columns: 200 },
    env: { OPENVBS_HOME: home, OPENVBS_URL: api.url, OPENVBS_PROJECT: PROJECT, OPENVBS_TOKEN: TOKEN, ...options.env },
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const code = await run(argv, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join(''), stderrChunks: stderr };
}

const lastRequest = () => api.requests.at(-1)!;

describe('run', () => {
  it('creates a volume of a size, in bytes, or from a path', async () => {
    let r = await cli(['volume', 'create', '--name', 'd1', '--size', '3', '--kms-key-id', 'key-1']);
    expect(r.code).toBe(0);
    expect(lastRequest().body).toEqual({ volume: { name: 'd1', kms_key_id: 'key-1', size: 3 } });
    expect(r.stdout).toMatch(/^id: +vol-new$/m);
    expect(r.stdout).toMatch(/^encrypted: +true$/m);

    await cli(['volume', 'create', '--name', 'd2', '--size-bytes', '4096']);
    expect(lastRequest().body).toEqual({ volume: { name: 'd2', size_bytes: 4096 } });
    r = await cli(['volume', 'create', '--name', 'd3', '--path', '/dev/loop7', '--json']);
    expect(lastRequest().body).toEqual({ volume: { name: 'd3', path: '/dev/loop7' } });
    expect(JSON.parse(r.stdout).volume.path).toBe('/dev/loop7');
  });

  it('lists volumes as a table', async () => {
    const r = await cli(['volume', 'list']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +NAME +STATUS +SIZE_GB +SIZE_BYTES +ENCRYPTED +PATH$/);
    expect(lines[1]).toMatch(/^vol-1 +data +available +1 +1073741824 +false +\/data\/vol-1\.img$/);
    expect(lines).toHaveLength(3);
  });

  it('creates a token and says the secret is shown once', async () => {
    const r = await cli(['token', 'create', '--description', 'ci']);
    expect(r.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: 'POST', path: `/v1/${PROJECT}/tokens`, body: { token: { description: 'ci' } } });
    expect(r.stdout).toMatch(/^token: +tok-new-secret$/m);
    expect(r.stdout).toMatch(/^scope: +user$/m);
    expect(r.stderr).toMatch(/shown only once/);
  });

  it('creates a token of a scope with an expiry, lists tokens without secrets and revokes one', async () => {
    const created = await cli(['token', 'create', '--scope', 'admin', '--expires-in', '3600', '--json']);
    expect(created.code).toBe(0);
    expect(lastRequest().body).toEqual({ token: { scope: 'admin', expires_in: 3600 } });
    const { id, expires_at } = JSON.parse(created.stdout).token;
    expect(expires_at).toBe('2025-01-01T12:00:00.000Z');

    const listed = await cli(['token', 'list']);
    expect(listed.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: 'GET', path: `/v1/${PROJECT}/tokens` });
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +SCOPE +CREATED +EXPIRES +DESCRIPTION$/);
    expect(lines.find((l) => l.startsWith(`${id} `))).toMatch(/ admin +2025-01-01T11:00:00\.000Z +2025-01-01T12:00:00\.000Z +-$/);
    expect(listed.stdout).not.toContain('tok-');

    const revoked = await cli(['token', 'revoke', id]);
    expect(revoked.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: 'DELETE', path: `/v1/${PROJECT}/tokens/${id}`, body: undefined });
    expect(revoked.stdout).toBe(`token ${id} revoked\n`);
    const again = await cli(['token', 'revoke', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/OpenVBS\.0404: token .* not found/);
  });

  it('starts a backup without waiting and says how to follow it', async () => {
    const r = await cli(['backup', 'create', '--volume', 'vol-1', '--name', 'b1', '--description', 'before upgrade', '--full']);
    expect(r.code).toBe(0);
    expect(lastRequest().body).toEqual({ backup: { volume_id: 'vol-1', name: 'b1', description: 'before upgrade', extend_param: { FullBackup: 'true' } } });
    const jobId = /^job_id: (\S+)$/m.exec(r.stdout)?.[1];
    expect(jobId).toMatch(/^job-/);
    expect(r.stderr).toContain(`openvbs job wait ${jobId}`);
  });

  it('draws the progress bar on a terminal while waiting, then the summary and the job', async () => {
    const r = await cli(['backup', 'create', '--volume', 'vol-1', '--name', 'b2', '--wait'], { tty: true });
    expect(r.code).toBe(0);
    const live = r.stderrChunks.filter((c) => c.startsWith('\rbackup'));
    expect(live).toHaveLength(3);
    expect(live[0]).toMatch(/^\rbackup {2}INIT +\[-{24}\] {4}0%/);
    expect(live[2]).toContain('   50%  100.0/200.0 MB  100.0 MB/s  ETA 0:01');
    const last = r.stderrChunks.at(-1)!;
    expect(last.startsWith('\r\x1b[K')).toBe(true);
    expect(last.slice(4)).toMatch(/^backup job job-\d+ SUCCESS in 4\.0 s, 200\.0 MB at 50\.0 MB\/s \(backup_id bk-job-\d+, volume_id vol-1\)\n$/);
    expect(r.stdout).toMatch(/^status: +SUCCESS$/m);
    expect(r.stdout).toMatch(/^entities\.backup_id: +bk-job-\d+$/m);
  });

  it('follows restore and delete jobs', async () => {
    let r = await cli(['backup', 'restore', 'bk-1', '--volume', 'vol-1', '--wait']);
    expect(r.code).toBe(0);
    expect(api.requests.find((q) => q.path.endsWith('/restore'))?.body).toEqual({ restore: { volume_id: 'vol-1' } });
    expect(r.stderr).toMatch(/^restore job job-\d+ SUCCESS/);
    expect(r.stdout).toMatch(/^job_type: +bksRestoreBackup$/m);

    r = await cli(['backup', 'restore', 'bk-1', '--volume', 'vol-1', '--wait', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ job_type: 'bksRestoreBackup', status: 'SUCCESS' });
    expect(r.stderr).toBe('');

    r = await cli(['backup', 'delete', 'bk-2', '--wait']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^delete job job-\d+ SUCCESS/);
  });

  it('gives up after --timeout and exits 1', async () => {
    const jobId = api.addJob([{ job_id: 'job-stuck', job_type: 'bksCreateBackup', status: 'RUNNING', entities: {}, bytes_done: 0, bytes_total: 0 }]);
    const r = await cli(['job', 'wait', jobId, '--timeout', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('backup job job-stuck RUNNING still running after 2.0 s');
    expect(r.stderr).toContain('error: timed out after 2 s waiting for job job-stuck (status RUNNING)');
  });

  it('stops waiting on Ctrl-C, says how to resume and exits 130', async () => {
    const jobId = api.addJob([{ job_id: 'job-long', job_type: 'bksCreateBackup', status: 'RUNNING', entities: {} }]);
    const r = await cli(['job', 'wait', jobId], { signal: AbortSignal.abort() });
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('backup job job-long RUNNING still running after 0 ms\nstopped waiting; the job goes on (openvbs job wait job-long)\n');
    const json = await cli(['job', 'wait', jobId, '--json'], { signal: AbortSignal.abort() });
    expect(json.code).toBe(130);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'interrupted', message: 'stopped waiting; the job goes on (openvbs job wait job-long)' } });
  });

  it('pages the backup list and tells how to get more', async () => {
    const r = await cli(['backup', 'list', '--limit', '1', '--status', 'available', '--volume', 'vol-1']);
    expect(r.code).toBe(0);
    expect(lastRequest().query).toEqual({ status: 'available', volume_id: 'vol-1', limit: '1' });
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(r.stderr).toContain('more: openvbs backup list --marker bk-1');
  });

  it('says so when a list is empty', async () => {
    const r = await cli(['backup', 'list', '--name', 'nothing-like-this']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ID  NAME  STATUS  VOLUME  SIZE_GB  STORED  TYPE  CREATED\n');
    expect(r.stderr).toBe('no backups\n');
  });

  it('shows what a backup cost, readable in text and as the API sent it in JSON', async () => {
    const r = await cli(['backup', 'show', 'bk-2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.slice(-6)).toEqual([
      expect.stringMatching(/^stored_bytes: +4\.2 MB \(4200000 bytes\)$/),
      expect.stringMatching(/^new_chunks: +9$/),
      expect.stringMatching(/^reused_blocks: +236$/),
      expect.stringMatching(/^dedup_blocks: +3$/),
      expect.stringMatching(/^zero_blocks: +1800$/),
      expect.stringMatching(/^parent_backup_id: +bk-1$/),
    ]);
    expect(r.stdout).toMatch(/^is_incremental: +true$/m);
    expect(r.stdout).not.toContain('os-openvbs-bak-stats-attr');

    const full = await cli(['backup', 'show', 'bk-1']);
    expect(full.stdout).toMatch(/^stored_bytes: +123\.5 MB \(123456789 bytes\)$/m);
    expect(full.stdout).toMatch(/^parent_backup_id: +-$/m);

    const json = await cli(['backup', 'show', 'bk-2', '--json']);
    const shown = JSON.parse(json.stdout).backup;
    expect(shown['os-openvbs-bak-stats-attr:stats']).toEqual({
      stored_bytes: 4_200_000,
      new_chunks: 9,
      reused_blocks: 236,
      dedup_blocks: 3,
      zero_blocks: 1800,
      parent_backup_id: 'bk-1',
      blocks: 2048,
      logical_bytes: 130e6,
      packs_written: 1,
    });
    expect(JSON.parse(shown.service_metadata)).toMatchObject({ Type: '1', stored_bytes: '4200000', parent_backup_id: 'bk-1' });
    expect(JSON.parse((await cli(['backup', 'list', '--json'])).stdout).backups[0]['os-openvbs-bak-stats-attr:stats'].stored_bytes).toBe(123_456_789);
  });

  it('shows the 404 of a backup by its OpenStack name', async () => {
    const r = await cli(['backup', 'show', 'bk-missing']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: itemNotFound: Backup bk-missing could not be found.\n');
  });

  it('prints a usage error as one line and exits 2, without calling the API', async () => {
    const before = api.requests.length;
    const r = await cli(['backup', 'create', '--name', 'x']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("error: required option '--volume <id>' not specified (see `openvbs backup create --help`)\n");
    expect(api.requests.length).toBe(before);
  });

  it('exits 2 naming the settings that are missing', async () => {
    const r = await cli(['volume', 'list'], { env: { OPENVBS_TOKEN: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: not configured for ${api.url}: set OPENVBS_TOKEN (or --token)\n`);
  });

  it('prints help on stdout and exits 0', async () => {
    const r = await cli(['job', 'wait', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: openvbs job wait \[options\] <id>\n/);
    expect(r.stdout).toContain('--timeout <seconds>');
    expect(r.stderr).toBe('');
  });

  it('deletes a volume', async () => {
    api.volumes.push({ ...api.volumes[0]!, id: 'vol-spare' });
    const r = await cli(['volume', 'delete', 'vol-spare']);
    expect(r.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: 'DELETE', path: `/v2/${PROJECT}/volumes/vol-spare`, token: TOKEN, body: undefined });
    expect(r.stdout).toBe('volume vol-spare deleted\n');
    expect(api.volumes.map((v) => v.id)).not.toContain('vol-spare');

    const again = await cli(['volume', 'delete', 'vol-spare', '--json']);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(JSON.parse(again.stderr)).toEqual({ error: { code: 'OpenVBS.0404', message: 'Volume vol-spare could not be found.' } });
  });

  it('refuses to delete a volume a job holds', async () => {
    api.volumes.push({ ...api.volumes[0]!, id: 'vol-busy', status: 'backing-up' });
    const r = await cli(['volume', 'delete', 'vol-busy']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: VolumeBackup.0012: volume vol-busy is backing-up\n');
    expect(api.volumes.map((v) => v.id)).toContain('vol-busy');
  });

  it('creates and lists customer keys', async () => {
    let r = await cli(['key', 'list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ID  ALIAS  ENABLED  CREATED  ARN  DESCRIPTION\n');
    expect(r.stderr).toBe('no keys\n');

    r = await cli(['key', 'create', '--alias', 'alias/finance', '--description', 'finance volumes']);
    expect(r.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: 'POST', path: `/v1/${PROJECT}/keys`, body: { key: { alias: 'alias/finance', description: 'finance volumes' } } });
    expect(r.stdout).toMatch(/^id: +key-1$/m);
    expect(r.stdout).toMatch(new RegExp(`^arn: +arn:openvbs:kms:local:${PROJECT}:key/key-1$`, 'm'));

    r = await cli(['key', 'create', '--json']);
    expect(lastRequest().body).toEqual({ key: {} });
    expect(JSON.parse(r.stdout)).toMatchObject({ key: { id: 'key-2', alias: null, enabled: true } });

    r = await cli(['key', 'list']);
    expect(lastRequest()).toMatchObject({ method: 'GET', path: `/v1/${PROJECT}/keys` });
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'ID     ALIAS          ENABLED  CREATED                   ARN                                        DESCRIPTION',
      `key-1  alias/finance  true     2025-01-01T12:00:00.000Z  arn:openvbs:kms:local:${PROJECT}:key/key-1  finance volumes`,
      `key-2  -              true     2025-01-01T12:00:00.000Z  arn:openvbs:kms:local:${PROJECT}:key/key-2  -`,
    ]);
    r = await cli(['key', 'list', '--json']);
    expect(JSON.parse(r.stdout).keys.map((k: { id: string }) => k.id)).toEqual(['key-1', 'key-2']);
  });

  it('prints an API error as JSON on stderr with --json', async () => {
    const r = await cli(['--json', 'key', 'create', '--alias', 'alias/finance']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'OpenVBS.1202', message: 'alias alias/finance is already in use' } });
  });

  it('prints a usage error as JSON with --json, anywhere on the line', async () => {
    for (const argv of [
      ['--json', 'volume', 'create', '--name', 'd'],
      ['volume', 'create', '--name', 'd', '--json'],
    ]) {
      const r = await cli(argv);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'usage', message: 'missing --size, --size-bytes or --path' } });
    }
    const unknown = await cli(['volume', 'list', '--colour', '--json']);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stderr)).toEqual({ error: { code: 'usage', message: "unknown option '--colour'" } });
  });

  it('with --json and --wait, prints the failed job on stdout and the failure as JSON on stderr', async () => {
    const jobId = api.addJob([{ job_id: 'job-doomed', job_type: 'bksCreateBackup', status: 'FAIL', error_code: 'VolumeBackup.0013', fail_reason: 'EIO', entities: {} }]);
    const r = await cli(['job', 'wait', jobId, '--json'], { tty: true });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ job_id: 'job-doomed', status: 'FAIL' });
    // No progress line or summary: stderr holds nothing but the JSON error.
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'VolumeBackup.0013', message: 'EIO' } });
  });

  it('with --json, a timed-out wait is a JSON error too', async () => {
    const jobId = api.addJob([{ job_id: 'job-slow', job_type: 'bksCreateBackup', status: 'RUNNING', entities: {} }]);
    const r = await cli(['job', 'wait', jobId, '--timeout', '1', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ job_id: 'job-slow', status: 'RUNNING' });
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'timeout', message: 'timed out after 1 s waiting for job job-slow (status RUNNING); it goes on' } });
  });
});

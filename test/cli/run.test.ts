// `run` in-process against the fake API, with a fake clock: output shapes, the progress display on a
// terminal, and the request bodies the commands send.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../lib/cli/run.ts';
import type { CliIO } from '../../lib/cli/run.ts';
import { PROJECT, startFakeApi, TOKEN } from './fake-api.ts';
import type { FakeApi } from './fake-api.ts';

let api: FakeApi;

beforeAll(async () => {
  api = await startFakeApi();
});

afterAll(async () => {
  await api?.close();
});

async function cli(argv: string[], options: { tty?: boolean; env?: Record<string, string | undefined> } = {}) {
  let t = 0;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: options.tty ?? false, columns: 200 },
    env: { OPENVBS_URL: api.url, OPENVBS_PROJECT: PROJECT, OPENVBS_TOKEN: TOKEN, ...options.env },
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
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
    expect(r.stderr).toMatch(/shown only once/);
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
    let r = await cli(['backup', 'restore', 'bk-1', '--volume', 'vol-1', '--wait', '--json']);
    expect(r.code).toBe(0);
    expect(api.requests.find((q) => q.path.endsWith('/restore'))?.body).toEqual({ restore: { volume_id: 'vol-1' } });
    expect(JSON.parse(r.stdout)).toMatchObject({ job_type: 'bksRestoreBackup', status: 'SUCCESS' });
    expect(r.stderr).toMatch(/^restore job job-\d+ SUCCESS/);

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
    expect(r.stdout).toBe('ID  NAME  STATUS  VOLUME  SIZE_GB  TYPE  CREATED\n');
    expect(r.stderr).toBe('no backups\n');
  });

  it('shows the 404 of a backup by its OpenStack name', async () => {
    const r = await cli(['backup', 'show', 'bk-missing']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: itemNotFound: Backup bk-missing could not be found.\n');
  });

  it('prints usage and exits 2 for a usage error, without calling the API', async () => {
    const before = api.requests.length;
    const r = await cli(['backup', 'create', '--name', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: missing --volume\n\nusage: openvbs backup create/);
    expect(api.requests.length).toBe(before);
  });

  it('exits 2 naming the settings that are missing', async () => {
    const r = await cli(['volume', 'list'], { env: { OPENVBS_TOKEN: undefined, OPENVBS_URL: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: not configured: set OPENVBS_URL (or --url), OPENVBS_TOKEN (or --token); `npm start` prints them\n');
  });

  it('prints help on stdout and exits 0', async () => {
    const r = await cli(['job', 'wait', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: openvbs job wait ID \[--timeout S\]/);
    expect(r.stderr).toBe('');
  });
});

// The local service as a user runs it (`npm start` in a child process, embedded backend): state survives
// a graceful stop and a crash, interrupted jobs end, a second instance on the same home is refused, and a
// start never deletes anything.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { startServiceProcess } from '../support/service-process.ts';
import type { ServiceProcess } from '../support/service-process.ts';
import { apiCall } from '../support/api-call.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';

const MiB = 1024 * 1024;
const SEGMENT_ENV = { OPENVBS_SEGMENT_BLOCKS: '16' }; // 8 MiB segments: many steps per job

let home: string;
const started: ServiceProcess[] = [];

async function start(env: Record<string, string> = {}) {
  const res = await startServiceProcess(home, { ...SEGMENT_ENV, ...env });
  if (!res.service) throw new Error(`service did not start (${res.exitCode}): ${res.stderr}`);
  started.push(res.service);
  return res.service;
}

function client(svc: ServiceProcess) {
  const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
  const job = async (jobId: string) => (await api('GET', `/v1/${svc.projectId}/jobs/${jobId}`)).body;
  const waitJob = async (jobId: string) => {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const j = await job(jobId);
      if (j.status === 'SUCCESS' || j.status === 'FAIL') return j;
    }
    throw new Error(`job ${jobId} did not end`);
  };
  const createVolume = async (name: string, sizeBytes: number) => {
    const res = await api('POST', `/v2/${svc.projectId}/volumes`, { volume: { name, size_bytes: sizeBytes } });
    expect(res.status).toBe(200);
    return res.body.volume as { id: string; path: string };
  };
  const startBackup = async (volumeId: string, name: string) => {
    const res = await api('POST', `/v2/${svc.projectId}/cloudbackups`, { backup: { volume_id: volumeId, name } });
    expect(res.status).toBe(200);
    return res.body.job_id as string;
  };
  const restore = async (backupId: string, volumeId: string) => {
    const res = await api('POST', `/v2/${svc.projectId}/cloudbackups/${backupId}/restore`, { restore: { volume_id: volumeId } });
    expect(res.status).toBe(200);
    return waitJob(res.body.job_id);
  };
  return { api, job, waitJob, createVolume, startBackup, restore };
}

/** What the service itself wrote to stderr: Node's own process warnings (e.g. under heavy load) left out. */
function ownLines(stderr: string): string[] {
  return stderr
    .trim()
    .split('\n')
    .filter((line) => !/^\(node:\d+\) /.test(line) && !line.startsWith('(Use `node --trace-'));
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'openvbs-restart-'));
});

afterEach(async () => {
  for (const svc of started.splice(0)) {
    svc.signal('SIGKILL');
    await svc.exited;
  }
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('the local service across restarts (embedded backend)', () => {
  let volume: { id: string; path: string };
  let imageSha: string;
  let firstBackupId: string;

  it('keeps volumes, backups, keys, jobs and the token across a SIGTERM and a new start', async () => {
    // files a user keeps under the home folder survive every start
    await mkdir(join(home, 'volumes'), { recursive: true });
    await writeFile(join(home, 'my-notes.txt'), 'mine');
    await writeFile(join(home, 'volumes', 'keep-me.img'), 'also mine');

    const first = await start();
    const c1 = client(first);
    volume = await c1.createVolume('kept', 24 * MiB);
    expect((await stat(volume.path)).mode & 0o777).toBe(0o600);
    await writeDiskImage(volume.path, 24 * MiB, 17);
    imageSha = await sha256File(volume.path);
    const jobId = await c1.startBackup(volume.id, 'before-restart');
    const job = await c1.waitJob(jobId);
    expect(job.status).toBe('SUCCESS');
    firstBackupId = job.entities.backup_id;
    const key = await c1.api('POST', `/v1/${first.projectId}/keys`, { key: { alias: 'alias/kept-key' } });
    expect(key.status).toBe(201);

    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await start();
    expect(second.projectId).toBe(first.projectId);
    expect(second.token).toBe(first.token); // the same token works: nothing to re-export
    const connection = JSON.parse(await readFile(join(home, 'connection.json'), 'utf8'));
    expect(connection).toEqual({ url: second.url, project_id: second.projectId, token: second.token });
    const c2 = client(second);
    const listed = await c2.api('GET', `/v2/${second.projectId}/backups`);
    expect(listed.body.backups.map((b: { id: string }) => b.id)).toContain(firstBackupId);
    expect((await c2.job(jobId)).status).toBe('SUCCESS');
    expect((await c2.api('GET', `/v2/${second.projectId}/volumes/${volume.id}`)).body.volume.status).toBe('available');
    const keys = await c2.api('GET', `/v1/${second.projectId}/keys`);
    expect(keys.body.keys.map((k: { alias: string }) => k.alias)).toContain('alias/kept-key');

    const target = await c2.createVolume('restored', 24 * MiB);
    expect((await c2.restore(firstBackupId, target.id)).status).toBe('SUCCESS');
    expect(await sha256File(target.path)).toBe(imageSha);
    expect(await readFile(join(home, 'my-notes.txt'), 'utf8')).toBe('mine');
    expect(await readFile(join(home, 'volumes', 'keep-me.img'), 'utf8')).toBe('also mine');
  });

  it('ends a backup cut by SIGKILL on the next start; the volume backs up again and earlier backups restore', async () => {
    let svc = await start();
    let c = client(svc);
    const big = await c.createVolume('crashy', 256 * MiB);
    await writeDiskImage(big.path, 256 * MiB, 23, { zero: 0.1, text: 0.3, random: 0.6, copy: 0 });
    const bigSha = await sha256File(big.path);

    // kill the service while the backup runs (after its prepare step, before its commit)
    let killedJob: string | undefined;
    for (let attempt = 0; attempt < 3 && !killedJob; attempt++) {
      const jobId = await c.startBackup(big.id, `crash-${attempt}`);
      for (;;) {
        const j = await c.job(jobId);
        if (j.status === 'RUNNING') {
          svc.signal('SIGKILL');
          killedJob = jobId;
          break;
        }
        if (j.status === 'SUCCESS' || j.status === 'FAIL') break;
      }
    }
    expect(killedJob).toBeDefined();
    await svc.exited;

    svc = await start();
    c = client(svc);
    const ended = await c.waitJob(killedJob!);
    expect(['SUCCESS', 'FAIL']).toContain(ended.status);
    if (ended.status === 'FAIL') expect(ended.fail_reason).toBeTruthy();
    const backupState = (await c.api('GET', `/v2/${svc.projectId}/backups/${ended.entities.backup_id}`)).body.backup?.status;
    expect(backupState).toBe(ended.status === 'SUCCESS' ? 'available' : 'error');
    expect((await c.api('GET', `/v2/${svc.projectId}/volumes/${big.id}`)).body.volume.status).toBe('available');

    // the volume takes a new backup, and every backup that says available restores bit-exact
    const again = await c.waitJob(await c.startBackup(big.id, 'after-crash'));
    expect(again.status).toBe('SUCCESS');
    const all = (await c.api('GET', `/v2/${svc.projectId}/backups/detail?volume_id=${big.id}`)).body.backups as Array<{ id: string; status: string }>;
    const available = all.filter((b) => b.status === 'available');
    expect(available.length).toBeGreaterThanOrEqual(1);
    for (const b of available) {
      const target = await c.createVolume(`r-${b.id}`, 256 * MiB);
      expect((await c.restore(b.id, target.id)).status).toBe('SUCCESS');
      expect(await sha256File(target.path)).toBe(bigSha);
      await c.api('DELETE', `/v2/${svc.projectId}/volumes/${target.id}`);
    }
    // the backup from before the first test's restart still restores too
    const old = await c.createVolume('old', 24 * MiB);
    expect((await c.restore(firstBackupId, old.id)).status).toBe('SUCCESS');
    expect(await sha256File(old.path)).toBe(imageSha);
  });

  it('ends a server backup cut by SIGKILL on the next start: its checkpoint and disk backups agree, the disks are free, every available checkpoint restores', async () => {
    let svc = await start();
    let c = client(svc);
    const v1 = (path: string) => `/v1/${svc.projectId}${path}`;
    const disks = [await c.createVolume('srv-a', 96 * MiB), await c.createVolume('srv-b', 96 * MiB)];
    for (const [i, d] of disks.entries()) await writeDiskImage(d.path, 96 * MiB, 70 + i, { zero: 0.1, text: 0.3, random: 0.6, copy: 0 });
    const sums = await Promise.all(disks.map((d) => sha256File(d.path)));
    const server = await c.api('POST', v1('/servers'), { server: { name: 'crashy-server', status: 'stopped', disks: disks.map((d) => ({ volume_id: d.id })) } });
    expect(server.status).toBe(201);
    const serverId = server.body.server.id as string;
    const protect = async (name: string) => {
      const res = await c.api('POST', v1(`/providers/${CSBS_PROVIDER_ID}/resources/${serverId}/action`), { protect: { backup_name: name } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return { checkpointId: res.body.checkpoint.id as string, jobId: res.body.checkpoint.extra_info.job_id as string };
    };

    let killed: { checkpointId: string; jobId: string } | undefined;
    for (let attempt = 0; attempt < 3 && !killed; attempt++) {
      const run = await protect(`crash_${attempt}`);
      for (;;) {
        const j = await c.job(run.jobId);
        if (j.status === 'RUNNING') {
          svc.signal('SIGKILL');
          killed = run;
          break;
        }
        if (j.status === 'SUCCESS' || j.status === 'FAIL') break;
      }
    }
    expect(killed).toBeDefined();
    await svc.exited;

    svc = await start();
    c = client(svc);
    const ended = await c.waitJob(killed!.jobId);
    expect(['SUCCESS', 'FAIL']).toContain(ended.status);
    const item = (await c.api('GET', v1(`/checkpoint_items?checkpoint_id=${killed!.checkpointId}`))).body.checkpoint_items[0];
    expect(item.status).toBe(ended.status === 'SUCCESS' ? 'available' : 'error');
    for (const b of item.extend_info.volume_backups) expect(b.status).toBe(item.status);
    for (const d of disks) expect((await c.api('GET', `/v2/${svc.projectId}/volumes/${d.id}`)).body.volume.status).toBe('in-use');

    const again = await protect('after_crash');
    expect((await c.waitJob(again.jobId)).status).toBe('SUCCESS');
    const items = (await c.api('GET', v1('/checkpoint_items'))).body.checkpoint_items as Array<{ id: string; checkpoint_id: string; status: string }>;
    for (const it of items.filter((i) => i.status === 'available')) {
      const res = await c.api('POST', v1('/restores'), { restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: it.checkpoint_id, parameters: { checkpoint_item_id: it.id, power_on: false } } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect((await c.waitJob(res.body.restore.id)).status).toBe('SUCCESS');
      expect(await Promise.all(disks.map((d) => sha256File(d.path)))).toEqual(sums);
    }
  });

  it('refuses a second instance on the same home and leaves the first one untouched', async () => {
    const first = await start();
    const before = await sha256File(volume.path);
    const second = await startServiceProcess(home, SEGMENT_ENV);
    expect(second.service).toBeUndefined();
    expect(second.exitCode).not.toBe(0);
    expect(ownLines(second.stderr), second.stderr).toHaveLength(1);
    expect(second.stderr).toMatch(/another OpenVBS instance \(pid \d+\) is running on/);
    expect(await sha256File(volume.path)).toBe(before);
    const c = client(first);
    expect((await c.api('GET', `/v2/${first.projectId}/volumes/${volume.id}`)).status).toBe(200);
  });

  it('says in one line that the port is taken', async () => {
    const first = await start();
    const port = new URL(first.url).port;
    const otherHome = await mkdtemp(join(tmpdir(), 'openvbs-port-'));
    try {
      const second = await startServiceProcess(otherHome, { PORT: port });
      expect(second.service).toBeUndefined();
      expect(second.exitCode).not.toBe(0);
      expect(ownLines(second.stderr), second.stderr).toHaveLength(1);
      expect(second.stderr).toMatch(/port \d+ .* already in use/);
    } finally {
      await rm(otherHome, { recursive: true, force: true });
    }
  });
});

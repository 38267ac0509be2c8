// Cancelling jobs through the API on the local runtime, on both backends: the job ends FAIL "cancelled",
// nothing half-written is marked available, the volume is released (a restore's target marked error with
// the reason), and every earlier backup still restores bit-exact.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { BACKENDS } from '../support/runtime-env.ts';
import { apiCall, waitForJob } from '../support/api-call.ts';

const MiB = 1024 * 1024;
const SIZE = 96 * MiB;

describe.each(BACKENDS)('cancelling jobs (%s backend)', (backend) => {
  let svc: LocalService;
  let home: string;

  const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
  const p = () => svc.projectId;
  const waitJob = (jobId: string) => waitForJob(api, svc.projectId, jobId);
  /** Starts jobs with `start` until one is cancelled while it runs (a fast machine may finish one first). */
  const cancelWhileRunning = async (start: () => Promise<string>) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const jobId = await start();
      for (;;) {
        const job = (await api('GET', `/v1/${p()}/jobs/${jobId}`)).body;
        if (job.status === 'SUCCESS' || job.status === 'FAIL') break;
        if (job.status !== 'RUNNING') continue;
        const res = await api('POST', `/v1/${p()}/jobs/${jobId}/cancel`);
        if (res.status === 409) break; // it ended meanwhile
        expect(res.status).toBe(200);
        return { jobId, answer: res.body };
      }
    }
    throw new Error('no job could be cancelled while it ran');
  };

  beforeAll(async () => {
    process.env.OPENVBS_SEGMENT_BLOCKS = '8'; // 4 MiB segments: many steps per job
    home = await mkdtemp(join(tmpdir(), 'openvbs-cancel-'));
    svc = await startLocalService({ backend, port: 0, home, workers: 1, prefix: `c${randomBytes(4).toString('hex')}` });
  });
  afterAll(async () => {
    await svc?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('cancels a backup and a restore cleanly; the earlier backup restores bit-exact', async () => {
    const vol = (await api('POST', `/v2/${p()}/volumes`, { volume: { name: 'src', size_bytes: SIZE } })).body.volume;
    await writeDiskImage(vol.path, SIZE, 31, { zero: 0.1, text: 0.3, random: 0.6, copy: 0 });
    const sha = await sha256File(vol.path);
    const first = await waitJob((await api('POST', `/v2/${p()}/cloudbackups`, { backup: { volume_id: vol.id, name: 'kept' } })).body.job_id);
    expect(first.status).toBe('SUCCESS');
    const keptId = first.entities.backup_id;

    const backup = await cancelWhileRunning(async () => (await api('POST', `/v2/${p()}/cloudbackups`, { backup: { volume_id: vol.id, name: 'cut', extend_param: { FullBackup: 'true' } } })).body.job_id);
    const cancelled = await waitJob(backup.jobId);
    expect(cancelled).toMatchObject({ status: 'FAIL', fail_reason: 'cancelled' });
    expect((await api('GET', `/v2/${p()}/backups/${cancelled.entities.backup_id}`)).body.backup.status).toBe('error');
    expect((await api('GET', `/v2/${p()}/volumes/${vol.id}`)).body.volume.status).toBe('available');
    expect((await api('POST', `/v1/${p()}/jobs/${backup.jobId}/cancel`)).status).toBe(409);

    const target = (await api('POST', `/v2/${p()}/volumes`, { volume: { name: 'dst', size_bytes: SIZE } })).body.volume;
    const restore = await cancelWhileRunning(async () => (await api('POST', `/v2/${p()}/cloudbackups/${keptId}/restore`, { restore: { volume_id: target.id } })).body.job_id);
    expect(await waitJob(restore.jobId)).toMatchObject({ status: 'FAIL', fail_reason: 'cancelled' });
    const half = (await api('GET', `/v2/${p()}/volumes/${target.id}`)).body.volume;
    expect(half).toMatchObject({ status: 'error', status_reason: expect.stringContaining('cancelled') });
    expect((await api('GET', `/v2/${p()}/backups/${keptId}`)).body.backup.status).toBe('available');

    const fresh = (await api('POST', `/v2/${p()}/volumes`, { volume: { name: 'dst2', size_bytes: SIZE } })).body.volume;
    expect(await waitJob((await api('POST', `/v2/${p()}/cloudbackups/${keptId}/restore`, { restore: { volume_id: fresh.id } })).body.job_id)).toMatchObject({ status: 'SUCCESS', fail_reason: null });
    expect(await sha256File(fresh.path)).toBe(sha);
    expect((await waitJob((await api('POST', `/v2/${p()}/cloudbackups`, { backup: { volume_id: vol.id, name: 'again' } })).body.job_id)).status).toBe('SUCCESS');
  });
});

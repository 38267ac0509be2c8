// Crash consistency of a whole server backup, end to end through the API on the local runtime: a writer keeps
// stamping one increasing sequence number on three disks in turn while the server is backed up with freeze and
// thaw hooks that hold it. Restored onto another server, the three disks agree (no disk ahead of another by
// more than the one write in flight), and the writer was held only for the capture, not the whole backup.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import { apiCall, waitForJob } from '../support/api-call.ts';
import { continueHook, newestStamp, stampsAgree, startWriter, stopHook, stopWriters } from '../support/stamp-writer.ts';

const MiB = 1024 * 1024;
const DISK_BYTES = 48 * MiB;

let svc: LocalService;
let home: string;
const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
const v1 = (path: string) => `/v1/${svc.projectId}${path}`;

async function newServer(name: string, fill: boolean) {
  const disks: Array<{ id: string; path: string }> = [];
  for (let i = 0; i < 3; i++) {
    const res = await api('POST', `/v2/${svc.projectId}/volumes`, { volume: { name: `${name}-${i}`, size_bytes: DISK_BYTES } });
    expect(res.status).toBe(200);
    disks.push(res.body.volume);
    if (fill) {
      // Non-zero data everywhere, so the capture takes a while.
      const fh = await open(res.body.volume.path, 'r+');
      for (let at = 0; at < DISK_BYTES; at += MiB) await fh.write(Buffer.alloc(MiB, 0xa5 ^ i), 0, MiB, at);
      await fh.close();
    }
  }
  const res = await api('POST', v1('/servers'), { server: { name, status: fill ? 'running' : 'stopped', disks: disks.map((d) => ({ volume_id: d.id })) } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.server.id as string, disks };
}

const waitJob = (jobId: string) => waitForJob(api, svc.projectId, jobId);

beforeAll(async () => {
  process.env.OPENVBS_SEGMENT_BLOCKS = '16';
  process.env.OPENVBS_ALLOW_SERVER_HOOKS = '1'; // the operator lets servers have freeze and thaw hooks
  home = await mkdtemp(join(tmpdir(), 'openvbs-consistency-'));
  svc = await startLocalService({ backend: 'embedded', port: 0, home, workers: 1 });
});

afterEach(stopWriters);

afterAll(async () => {
  stopWriters();
  await svc?.stop();
  await rm(home, { recursive: true, force: true });
});

describe('a server backup of disks being written', () => {
  it('with freeze and thaw hooks: the restored disks agree, and the writer was held only for the capture', async () => {
    const source = await newServer('db', true);
    const writer = await startWriter(source.disks.map((d) => d.path));
    const hooks = await api('PUT', v1(`/servers/${source.id}/hooks`), { hooks: { freeze: stopHook(writer.pid!), thaw: continueHook(writer.pid!) } });
    expect(hooks.status, JSON.stringify(hooks.body)).toBe(200);

    const started = performance.now();
    const protect = await api('POST', v1(`/providers/${CSBS_PROVIDER_ID}/resources/${source.id}/action`), { protect: { backup_name: 'consistent' } });
    expect(protect.status, JSON.stringify(protect.body)).toBe(200);
    const job = await waitJob(protect.body.checkpoint.extra_info.job_id);
    const backupMs = performance.now() - started;
    expect(job.status, job.fail_reason).toBe('SUCCESS');
    const before = await newestStamp(source.disks[0]!.path);
    await new Promise((r) => setTimeout(r, 50));
    expect(await newestStamp(source.disks[0]!.path), 'the writer goes on after the thaw').toBeGreaterThan(before);
    stopWriters();

    const item = (await api('GET', v1(`/checkpoint_items?checkpoint_id=${protect.body.checkpoint.id}`))).body.checkpoint_items[0];
    expect(item.status).toBe('available');
    expect(item.extend_info['os-openvbs:crash_consistent']).toBe(true);
    const freezeMs = item.extend_info['os-openvbs:freeze_ms'] as number;

    const target = await newServer('db-copy', false);
    const restore = await api('POST', v1('/restores'), {
      restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: item.checkpoint_id, parameters: { checkpoint_item_id: item.id, power_on: false, targets: { server_id: target.id } } },
    });
    expect(restore.status, JSON.stringify(restore.body)).toBe(200);
    expect((await waitJob(restore.body.restore.id)).status).toBe('SUCCESS');

    const stamps = await Promise.all(target.disks.map((d) => newestStamp(d.path)));
    expect(stamps[0]).toBeGreaterThan(1000);
    expect(stampsAgree(stamps), `stamps ${stamps.join(', ')}`).toBe(true);
    expect(freezeMs).toBeLessThan(backupMs);
    console.log(`server backup of 3 x ${DISK_BYTES / MiB} MiB being written (${item.extend_info['os-openvbs:snapshot_method']}): writer held ${freezeMs} ms of the backup's ${backupMs.toFixed(0)} ms; restored stamps ${stamps.join(', ')}`);
  });
});

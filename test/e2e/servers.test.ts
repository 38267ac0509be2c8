// Server backups end to end on both backends, through the real HTTP API on the local runtime: a server of
// three disks (one under its own customer key) is protected, changed and protected again (incremental), then
// the first checkpoint is restored onto the stopped server and every disk holds exactly what it held then.
// A disk whose reads fail mid-way fails the whole checkpoint, and the checkpoint before it still restores.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../lib/local/service.ts';
import type { Handler, LocalService } from '../../lib/local/service.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../support/disk-image.ts';
import { BACKENDS } from '../support/runtime-env.ts';
import { apiCall, waitForJob } from '../support/api-call.ts';

const MiB = 1024 * 1024;
const SIZES = [12 * MiB, 8 * MiB + 4096, 10 * MiB];
const DEVICES = ['/dev/vda', '/dev/vdb', '/dev/vdc'];

/** The volume whose segment reads fail (set by the failure test), and from which segment on. */
let failingDisk: { volumeId: string; fromSegment: number } | undefined;

function wrapHandler(name: HandlerName, handler: Handler): Handler {
  if (name !== 'backup-segment') return handler;
  return async (event) => {
    const task = event as { volumeId: string; segment: number };
    if (failingDisk && task.volumeId === failingDisk.volumeId && task.segment >= failingDisk.fromSegment) {
      throw new Error(`injected: reading ${task.volumeId} failed at segment ${task.segment}`);
    }
    return handler(event);
  };
}

describe.each(BACKENDS)('CSBS server backups on the local runtime (%s backend)', (backend) => {
  let svc: LocalService;
  let home: string;
  const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
  const v1 = (path: string) => `/v1/${svc.projectId}${path}`;

  const waitJob = (jobId: string) => waitForJob(api, svc.projectId, jobId);

  /** Protects the server and waits until its checkpoint item leaves `protecting`. */
  async function protect(serverId: string, name: string) {
    const res = await api('POST', v1(`/providers/${CSBS_PROVIDER_ID}/resources/${serverId}/action`), { protect: { backup_name: name, resource_type: 'OS::Nova::Server' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const checkpointId = res.body.checkpoint.id as string;
    expect(res.body.checkpoint.status).toBe('protecting');
    const deadline = Date.now() + 120_000;
    for (;;) {
      const items = await api('GET', v1(`/checkpoint_items?checkpoint_id=${checkpointId}`));
      expect(items.status).toBe(200);
      const item = items.body.checkpoint_items[0];
      if (item && item.status !== 'protecting') return item;
      if (Date.now() > deadline) throw new Error(`checkpoint ${checkpointId} still protecting`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function restore(item: { id: string; checkpoint_id: string }, serverId: string) {
    const res = await api('POST', v1('/restores'), {
      restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: item.checkpoint_id, restore_target: serverId, parameters: { checkpoint_item_id: item.id, power_on: true } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return waitJob(res.body.restore.id);
  }

  const diskBackups = async (checkpointItem: { extend_info: { volume_backups: Array<{ id: string }> } }) => {
    const ids = new Set(checkpointItem.extend_info.volume_backups.map((b) => b.id));
    const all = (await api('GET', `/v2/${svc.projectId}/backups/detail`)).body.backups as Array<{ id: string; status: string; service_metadata: string }>;
    return all.filter((b) => ids.has(b.id));
  };

  let disks: Array<{ id: string; path: string }>;
  let serverId: string;
  let keyArn: string;
  let first: { id: string; checkpoint_id: string; status: string; extend_info: { volume_backups: Array<{ id: string; source_volume_id: string }> } };
  let firstSums: string[];

  beforeAll(async () => {
    process.env.OPENVBS_SEGMENT_BLOCKS = '8'; // 4 MiB segments: several per disk
    home = await mkdtemp(join(tmpdir(), 'openvbs-servers-'));
    svc = await startLocalService({ backend, port: 0, home, workers: 1, prefix: `srv${randomBytes(4).toString('hex')}`, wrapHandler });
    const key = await api('POST', v1('/keys'), { key: { alias: `alias/disk-${randomBytes(3).toString('hex')}` } });
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    keyArn = key.body.key.arn;
    disks = [];
    for (const [i, size] of SIZES.entries()) {
      const res = await api('POST', `/v2/${svc.projectId}/volumes`, { volume: { name: `disk-${i}`, size_bytes: size, ...(i === 2 ? { kms_key_id: keyArn } : {}) } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      disks.push(res.body.volume);
      await writeDiskImage(res.body.volume.path, size, 40 + i);
    }
    const server = await api('POST', v1('/servers'), { server: { name: 'app-1', status: 'running', disks: disks.map((d, i) => ({ volume_id: d.id, device: DEVICES[i] })) } });
    expect(server.status, JSON.stringify(server.body)).toBe(201);
    serverId = server.body.server.id;
  });

  afterAll(async () => {
    await svc?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('protects all disks, incrementally protects again, and restores the first checkpoint onto the stopped server bit-exact', async () => {
    firstSums = await Promise.all(disks.map((d) => sha256File(d.path)));
    first = await protect(serverId, 'first');
    expect(first.status, JSON.stringify(first)).toBe('available');
    // The three disk backups show in the VBS list, taken by a server backup (ST 1).
    const vbs = await diskBackups(first);
    expect(vbs).toHaveLength(3);
    for (const b of vbs) {
      expect(b.status).toBe('available');
      expect(JSON.parse(b.service_metadata).ST).toBe('1');
    }
    // The encrypted disk's chunks are in its own key domain: another key, another domain.
    const records = await Promise.all(first.extend_info.volume_backups.map((b) => svc.runtime.stores.backups.getBackup(svc.projectId, b.id)));
    const encrypted = records.find((r) => r!.volumeId === disks[2]!.id)!;
    expect(encrypted.kmsKeyId).toBe(keyArn);
    for (const other of records.filter((r) => r!.volumeId !== disks[2]!.id)) expect(other!.domainId).not.toBe(encrypted.domainId);
    // A disk backup of a checkpoint cannot be deleted through the VBS API.
    const refused = await api('POST', `/v2/${svc.projectId}/cloudbackups/${vbs[0]!.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('OpenVBS.1002');

    await scatterWrites(disks[0]!.path, SIZES[0]!, 512 * 1024, 0.2, 3);
    await scatterWrites(disks[2]!.path, SIZES[2]!, 512 * 1024, 0.2, 4);
    const second = await protect(serverId, 'second');
    expect(second.status).toBe('available');
    expect(second.extend_info.incremental).toBe(true);
    expect(await sha256File(disks[0]!.path)).not.toBe(firstSums[0]);

    // A running local server is refused; stopped, it takes the restore, and power_on starts it again.
    const running = await api('POST', v1('/restores'), { restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: first.checkpoint_id, parameters: { checkpoint_item_id: first.id, power_on: true } } });
    expect(running.status).toBe(409);
    expect((await api('POST', v1(`/servers/${serverId}/action`), { 'os-stop': {} })).status).toBe(200);
    const job = await restore(first, serverId);
    expect(job.status, job.fail_reason).toBe('SUCCESS');
    expect(job.sub_jobs).toHaveLength(3);
    for (const sub of job.sub_jobs) expect(sub.status).toBe('SUCCESS');
    expect(await Promise.all(disks.map((d) => sha256File(d.path)))).toEqual(firstSums);
    expect((await api('GET', v1(`/servers/${serverId}`))).body.server.status).toBe('running');
  });

  it('fails the whole checkpoint when one disk fails mid-way, leaves none of its disk backups available, and the earlier one still restores', async () => {
    failingDisk = { volumeId: disks[1]!.id, fromSegment: 1 };
    let failed;
    try {
      failed = await protect(serverId, 'broken');
    } finally {
      failingDisk = undefined;
    }
    expect(failed.status).toBe('error');
    expect(failed.extend_info.fail_reason).toContain(`disk ${DEVICES[1]} (${disks[1]!.id})`);
    const vbs = await diskBackups(failed);
    expect(vbs.length).toBe(3);
    for (const b of vbs) expect(b.status).toBe('error');
    // Every disk is free again and the earlier checkpoint restores.
    for (const d of disks) expect((await api('GET', `/v2/${svc.projectId}/volumes/${d.id}`)).body.volume.status).toMatch(/^(available|in-use)$/);
    expect((await api('POST', v1(`/servers/${serverId}/action`), { 'os-stop': {} })).status).toBe(200);
    const job = await restore(first, serverId);
    expect(job.status, job.fail_reason).toBe('SUCCESS');
    expect(await Promise.all(disks.map((d) => sha256File(d.path)))).toEqual(firstSums);
    // Deleting the failed checkpoint removes its disk backups from the VBS list.
    const del = await api('DELETE', v1(`/providers/${CSBS_PROVIDER_ID}/checkpoints/${failed.checkpoint_id}`));
    expect(del.status).toBe(200);
    const deadline = Date.now() + 60_000;
    while ((await diskBackups(failed)).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await diskBackups(failed)).toEqual([]);
  });
});

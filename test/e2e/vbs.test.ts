// End to end on both backends: the real HTTP API on the local runtime, the synthesized state machines run
// in-process, real files; the embedded backend on SQLite, files and key files, the AWS one through the real
// SDK against the emulator.
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { embeddedPaths } from '../../lib/wiring/backend.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../support/disk-image.ts';
import { BACKENDS } from '../support/runtime-env.ts';
import { apiCall, waitForJob } from '../support/api-call.ts';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB + 4096; // 81 blocks: several 8 MiB segments and a partial last block

describe.each(BACKENDS)('VBS API on the local runtime (%s backend)', (backend) => {
  let svc: LocalService;
  let home: string;

  const api = (method: string, path: string, body?: unknown, token: string | null = svc.token) => apiCall(svc.url, token, method, path, body);

  const p = () => `/v2/${svc.projectId}`;

  const waitJob = (jobId: string) => waitForJob(api, svc.projectId, jobId, 120_000);

  async function createVolume(name: string, sizeBytes: number) {
    const res = await api('POST', `${p()}/volumes`, { volume: { name, size_bytes: sizeBytes } });
    expect(res.status).toBe(200);
    return res.body.volume as { id: string; path: string; status: string };
  }

  async function backup(volumeId: string, name: string) {
    const res = await api('POST', `${p()}/cloudbackups`, { backup: { volume_id: volumeId, name } });
    expect(res.status).toBe(200);
    const job = await waitJob(res.body.job_id);
    return job;
  }

  async function restore(backupId: string, volumeId: string) {
    const res = await api('POST', `${p()}/cloudbackups/${backupId}/restore`, { restore: { volume_id: volumeId } });
    expect(res.status).toBe(200);
    return waitJob(res.body.job_id);
  }

  beforeAll(async () => {
    process.env.OPENVBS_SEGMENT_BLOCKS = '16';
    home = await mkdtemp(join(tmpdir(), 'openvbs-e2e-'));
    process.env.OPENVBS_VOLUME_ROOTS = home; // the operator lets images under the home be registered by path
    svc = await startLocalService({ backend, port: 0, home, workers: 1, prefix: `e2e${randomBytes(4).toString('hex')}` });
  });

  afterAll(async () => {
    await svc?.stop();
    await rm(home, { recursive: true, force: true });
  });

  let vol: { id: string; path: string };
  let firstBackupId: string;
  let firstSha: string;

  it('backs up a volume, incrementally backs it up again, restores, and deletes', async () => {
    vol = await createVolume('data-disk', SIZE);
    await writeDiskImage(vol.path, SIZE, 5);
    firstSha = await sha256File(vol.path);

    const job1 = await backup(vol.id, 'e2e-first');
    expect(job1.status).toBe('SUCCESS');
    expect(job1.job_type).toBe('bksCreateBackup');
    expect(job1.entities.volume_id).toBe(vol.id);
    expect(job1.progress).toBe(100);
    firstBackupId = job1.entities.backup_id;
    const shown = await api('GET', `${p()}/backups/${firstBackupId}`);
    expect(shown.status).toBe(200);
    expect(shown.body.backup.status).toBe('available');
    expect(JSON.parse(shown.body.backup.service_metadata).Type).toBe('0');
    const firstCost = shown.body.backup['os-openvbs-bak-stats-attr:stats'];
    expect(firstCost.stored_bytes).toBeGreaterThan(0);
    expect(firstCost.new_chunks).toBeGreaterThan(0);
    expect(firstCost.parent_backup_id).toBeNull();
    expect(JSON.parse(shown.body.backup.service_metadata).stored_bytes).toBe(String(firstCost.stored_bytes));
    expect((await api('GET', `${p()}/volumes/${vol.id}`)).body.volume.status).toBe('available');

    await scatterWrites(vol.path, SIZE, 512 * 1024, 0.05, 8);
    const secondSha = await sha256File(vol.path);
    const job2 = await backup(vol.id, 'e2e-second');
    expect(job2.status).toBe('SUCCESS');
    const secondId = job2.entities.backup_id;
    const second = (await api('GET', `${p()}/backups/${secondId}`)).body.backup;
    expect(second.is_incremental).toBe(true);
    expect(JSON.parse(second.service_metadata).Type).toBe('1');
    const secondCost = second['os-openvbs-bak-stats-attr:stats'];
    expect(secondCost.parent_backup_id).toBe(firstBackupId);
    expect(secondCost.reused_blocks).toBeGreaterThan(0);
    expect(secondCost.stored_bytes).toBeLessThan(firstCost.stored_bytes);
    expect(JSON.parse(second.service_metadata).parent_backup_id).toBe(firstBackupId);

    const list = await api('GET', `${p()}/backups/detail?volume_id=${vol.id}`);
    expect(list.body.backups.map((b: { id: string }) => b.id).sort()).toEqual([firstBackupId, secondId].sort());

    const target = await createVolume('restore-target', SIZE);
    const rjob = await restore(firstBackupId, target.id);
    expect(rjob.status).toBe('SUCCESS');
    expect(rjob.job_type).toBe('bksRestoreBackup');
    expect(await sha256File(target.path)).toBe(firstSha);
    expect((await api('GET', `${p()}/backups/${firstBackupId}`)).body.backup.status).toBe('available');
    expect((await api('GET', `${p()}/volumes/${target.id}`)).body.volume.status).toBe('available');

    // deleting the parent leaves the incremental child whole
    const del = await api('POST', `${p()}/cloudbackups/${firstBackupId}`);
    expect(del.status).toBe(200);
    expect((await waitJob(del.body.job_id)).status).toBe('SUCCESS');
    const gone = await api('GET', `${p()}/backups/${firstBackupId}`);
    expect(gone.status).toBe(404);
    expect(gone.body.itemNotFound).toBeDefined();
    const target2 = await createVolume('restore-target-2', SIZE);
    expect((await restore(secondId, target2.id)).status).toBe('SUCCESS');
    expect(await sha256File(target2.path)).toBe(secondSha);
  });

  it('answers 401 without a valid token and 404 for another project', async () => {
    expect((await api('GET', `${p()}/backups`, undefined, null)).status).toBe(401);
    const bad = await api('GET', `${p()}/backups`, undefined, 'ovbs_not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBeTruthy();

    const other = await svc.runtime.stores.tokens.issue('otherproject');
    const job = await backup(vol.id, 'e2e-cross');
    const id = job.entities.backup_id;
    // the other project's token cannot see this project's backup, volume or job, by either path
    expect((await api('GET', `/v2/otherproject/backups/${id}`, undefined, other.token)).status).toBe(404);
    expect((await api('GET', `${p()}/backups/${id}`, undefined, other.token)).status).toBe(404);
    expect((await api('GET', `/v2/otherproject/volumes/${vol.id}`, undefined, other.token)).status).toBe(404);
    expect((await api('GET', `/v1/otherproject/jobs/${job.job_id}`, undefined, other.token)).status).toBe(404);
  });

  it('rejects malformed requests with 400 in the error shape', async () => {
    const notJson = await api('POST', `${p()}/cloudbackups`, '{"backup":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBeTruthy();
    const missing = await api('POST', `${p()}/cloudbackups`, { backup: { name: 'x' } });
    expect(missing.status).toBe(400);
    const autoName = await api('POST', `${p()}/cloudbackups`, { backup: { volume_id: vol.id, name: 'autobk_x' } });
    expect(autoName.status).toBe(400);
    expect(autoName.body.error.code).toBe('VolumeBackup.0005');
    const badRestore = await api('POST', `${p()}/cloudbackups/${'x'.repeat(300)}/restore`, { restore: { volume_id: vol.id } });
    expect([400, 404]).toContain(badRestore.status);
    expect(badRestore.status).not.toBe(500);
    const unknown = await api('GET', `${p()}/no-such-route`);
    expect(unknown.status).toBe(404);
  });

  it('refuses a second job on a volume that already has one running', async () => {
    const first = await api('POST', `${p()}/cloudbackups`, { backup: { volume_id: vol.id, name: 'e2e-busy-1' } });
    expect(first.status).toBe(200);
    const second = await api('POST', `${p()}/cloudbackups`, { backup: { volume_id: vol.id, name: 'e2e-busy-2' } });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('VolumeBackup.0012');
    expect((await waitJob(first.body.job_id)).status).toBe('SUCCESS');
  });

  /** Failure notifications of this project: an SQS queue subscribed to the topic, or the embedded outbox. */
  async function failureInbox(): Promise<() => Promise<Array<{ status: string; projectId: string; detail: Record<string, unknown> }>>> {
    if (backend === 'embedded') {
      return async () => {
        const lines = (await readFile(embeddedPaths(home).notifications, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
        return lines
          .filter((l) => l.attributes.project_id === svc.projectId && l.attributes.status === 'failure')
          .map((l) => ({ status: l.attributes.status, projectId: l.attributes.project_id, detail: l.message }));
      };
    }
    const clients = createClients();
    const queue = await clients.sqs.send(new CreateQueueCommand({ QueueName: `failures-${randomBytes(4).toString('hex')}` }));
    const attrs = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }));
    await clients.sns.send(
      new SubscribeCommand({
        TopicArn: svc.runtime.config.backend === 'aws' ? svc.runtime.config.topicArn : undefined,
        Protocol: 'sqs',
        Endpoint: attrs.Attributes!.QueueArn,
        Attributes: { FilterPolicy: JSON.stringify({ project_id: [svc.projectId], status: ['failure'] }) },
      }),
    );
    return async () => {
      const received = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, WaitTimeSeconds: 5, MaxNumberOfMessages: 10 }));
      return (received.Messages ?? []).map((m) => {
        const envelope = JSON.parse(m.Body!);
        return { status: envelope.MessageAttributes.status.Value, projectId: envelope.MessageAttributes.project_id.Value, detail: JSON.parse(envelope.Message) };
      });
    };
  }

  it('fails a job whose task throws: backup error with a reason, volume released, failure published', async () => {
    const inbox = await failureInbox();

    // a registered image that shrinks after registration makes the segment task fail on a short read
    const imagePath = join(home, 'registered.img');
    await writeDiskImage(imagePath, 8 * MiB, 3, { zero: 0, text: 0, random: 1, copy: 0 });
    const registered = await api('POST', `${p()}/volumes`, { volume: { name: 'by-path', path: imagePath } });
    expect(registered.status).toBe(200);
    await truncate(imagePath, 1 * MiB);
    const job = await backup(registered.body.volume.id, 'e2e-doomed');
    expect(job.status).toBe('FAIL');
    expect(job.fail_reason).toMatch(/short read/);
    const failed = await api('GET', `${p()}/backups/${job.entities.backup_id}`);
    expect(failed.body.backup.status).toBe('error');
    expect(failed.body.backup.fail_reason).toMatch(/short read/);
    expect((await api('GET', `${p()}/volumes/${registered.body.volume.id}`)).body.volume.status).toBe('available');

    await svc.workflows.idle(); // the notification is the workflow's last step, after the job ended
    const messages = await inbox();
    expect(messages.length).toBe(1);
    expect(messages[0]!.status).toBe('failure');
    expect(messages[0]!.projectId).toBe(svc.projectId);
    expect(messages[0]!.detail.job_id).toBe(job.job_id);
    expect(messages[0]!.detail.fail_reason).toMatch(/short read/);
  });
});

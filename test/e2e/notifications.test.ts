// Notifications end to end, through the real HTTP API on the local runtime:
// - embedded backend: a local SMTP server receives the email, a local HTTPS receiver (a certificate made at test
//   time, trusted through OPENVBS_WEBHOOK_CA_FILE) gets the webhook with a valid signature (and a retry after a
//   503), an SMS is recorded, and project B's subscribers receive none of project A's notifications;
// - aws backend (the emulator): the API's subscription is an SNS subscription with the project's filter policy,
//   SQS queues subscribed with the same policies get project A's message and not project B's, and unsubscribing
//   removes the SNS subscription.
import { GetSubscriptionAttributesCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import type { OutboxNotifier } from '../../lib/embedded/outbox-notifier.ts';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { subscriptionFilterPolicy } from '../../lib/notify/subscriptions.ts';
import { verifyWebhookSignature } from '../../lib/notify/webhook.ts';
import { embeddedPaths } from '../../lib/wiring/backend.ts';
import { apiCall, waitForJob } from '../support/api-call.ts';
import { writeDiskImage } from '../support/disk-image.ts';

const MiB = 1024 * 1024;

interface Mail {
  to: string[];
  raw: string;
}

interface Hook {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The text of a mail body as sent (quoted-printable soft breaks and escapes undone). */
const mailText = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

const ENV_KEYS = ['OPENVBS_SMTP_URL', 'OPENVBS_SMTP_FROM', 'OPENVBS_WEBHOOK_CA_FILE', 'OPENVBS_DELIVERY_ATTEMPTS', 'OPENVBS_DELIVERY_BACKOFF_MS', 'OPENVBS_VOLUME_ROOTS', 'OPENVBS_SEGMENT_BLOCKS'];

async function startService(backend: 'embedded' | 'aws', home: string) {
  return startLocalService({ backend, port: 0, home, workers: 1, prefix: `ntf${randomBytes(4).toString('hex')}` });
}

function makeApi(svc: LocalService, token: string) {
  return (method: string, path: string, body?: unknown) => apiCall(svc.url, token, method, path, body);
}

async function backupJob(api: ReturnType<typeof makeApi>, projectId: string, volumeId: string, name: string) {
  const res = await api('POST', `/v2/${projectId}/cloudbackups`, { backup: { volume_id: volumeId, name } });
  expect(res.status).toBe(200);
  return waitForJob(api, projectId, res.body.job_id);
}

async function newVolume(api: ReturnType<typeof makeApi>, projectId: string, name: string) {
  const res = await api('POST', `/v2/${projectId}/volumes`, { volume: { name, size_bytes: 2 * MiB } });
  expect(res.status).toBe(200);
  await writeDiskImage(res.body.volume.path, 2 * MiB, 7);
  return res.body.volume as { id: string; path: string };
}

describe('notifications on the embedded backend: SMTP email, signed HTTPS webhooks, recorded SMS', () => {
  let home: string;
  let svc: LocalService;
  let smtp: SMTPServer;
  let receiver: Server;
  let hookUrl: string;
  const mails: Mail[] = [];
  const hooks: Hook[] = [];
  /** Paths answered 503 once before they are accepted. */
  const flaky = new Set<string>();
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const k of ENV_KEYS) saved[k] = process.env[k];
    home = await mkdtemp(join(tmpdir(), 'openvbs-notify-'));

    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
          callback();
        });
      },
    });
    await new Promise<void>((ok) => smtp.listen(0, '127.0.0.1', ok));
    const smtpPort = (smtp.server.address() as AddressInfo).port;

    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
      ],
    });
    const caFile = join(home, 'webhook-ca.pem');
    await writeFile(caFile, pems.cert);
    receiver = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hooks.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (flaky.delete(req.url ?? '')) {
          res.writeHead(503).end();
          return;
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
    hookUrl = `https://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    Object.assign(process.env, {
      OPENVBS_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      OPENVBS_SMTP_FROM: 'OpenVBS <openvbs@test.invalid>',
      OPENVBS_WEBHOOK_CA_FILE: caFile,
      OPENVBS_DELIVERY_ATTEMPTS: '4',
      OPENVBS_DELIVERY_BACKOFF_MS: '50',
      OPENVBS_VOLUME_ROOTS: home,
      OPENVBS_SEGMENT_BLOCKS: '16',
    });
    svc = await startService('embedded', home);
  });

  afterAll(async () => {
    await svc?.stop();
    await new Promise((ok) => smtp?.close(() => ok(undefined)));
    receiver?.closeAllConnections();
    await new Promise((ok) => receiver?.close(() => ok(undefined)));
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await rm(home, { recursive: true, force: true });
  });

  /** Every delivery started has ended (the workflow's notify step is its last). */
  async function settled() {
    await svc.workflows.idle();
    await (svc.runtime.backend.notifier as OutboxNotifier).idle();
  }

  const deliveryLog = async () =>
    (await readFile(embeddedPaths(home).deliveries, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { subscription_id: string; protocol: string; outcome: string; attempt: number; http_status?: number; text?: string; delivery_id: string });

  it('delivers project A’s job results to A’s email, webhook and SMS subscribers, and none to project B’s', async () => {
    const pA = svc.projectId;
    const api = makeApi(svc, svc.token);
    const pB = `projb${randomBytes(6).toString('hex')}`;
    const apiB = makeApi(svc, (await svc.runtime.stores.tokens.issue(pB)).token);

    const subscribe = async (call: typeof api, project: string, subscription: Record<string, unknown>) => {
      const res = await call('POST', `/v1/${project}/subscriptions`, { subscription });
      expect(res.status).toBe(201);
      expect(res.body.subscription.status).toBe('confirmed');
      return res.body.subscription as { id: string; secret?: string };
    };
    await subscribe(api, pA, { protocol: 'email', endpoint: 'alice@example.com' });
    const hookA = await subscribe(api, pA, { protocol: 'https', endpoint: `${hookUrl}/a` });
    const smsA = await subscribe(api, pA, { protocol: 'sms', endpoint: '+4915112345678', failures_only: true });
    await subscribe(apiB, pB, { protocol: 'email', endpoint: 'bob@example.com' });
    const hookB = await subscribe(apiB, pB, { protocol: 'https', endpoint: `${hookUrl}/b` });
    expect(hookA.secret).toMatch(/^whsec_/);
    // B has a job of its own: its subscribers hear of it, A's do not
    const volB = await newVolume(apiB, pB, 'b-disk');

    flaky.add('/a'); // the first delivery to A's webhook fails with 503 and is retried
    const vol = await newVolume(api, pA, 'data-disk');
    const job = await backupJob(api, pA, vol.id, 'nightly');
    expect(job.status).toBe('SUCCESS');
    expect((await backupJob(apiB, pB, volB.id, 'b-nightly')).status).toBe('SUCCESS');
    await settled();

    // the email, through the SMTP server
    const toA = mails.filter((m) => m.to.includes('alice@example.com'));
    expect(toA.length).toBe(1);
    const text = mailText(toA[0]!.raw);
    expect(text).toMatch(/^Subject: OpenVBS: Backup of volume data-disk succeeded\r?$/m);
    expect(text).toMatch(/^From: OpenVBS <openvbs@test\.invalid>\r?$/m);
    expect(text).toContain('Backup succeeded.');
    expect(text).toMatch(new RegExp(`Volume: +data-disk \\(${vol.id}\\)`));
    expect(text).toMatch(new RegExp(`Backup: +nightly \\(${job.entities.backup_id}\\)`));
    expect(text).toMatch(/Duration: +\d/);
    expect(text).toMatch(/Size: +2\.0 MiB/);

    // the webhook: a 503, then the same delivery again, both signed with A's secret
    const atA = hooks.filter((h) => h.path === '/a');
    expect(atA.length).toBe(2);
    for (const h of atA) {
      expect(h.headers['content-type']).toBe('application/json');
      expect(verifyWebhookSignature(hookA.secret!, h.body, h.headers['x-openvbs-signature'] as string)).toBe(true);
      expect(verifyWebhookSignature(hookB.secret!, h.body, h.headers['x-openvbs-signature'] as string)).toBe(false);
    }
    expect(atA[0]!.body).toBe(atA[1]!.body);
    expect(atA[0]!.headers['x-openvbs-delivery']).toBe(atA[1]!.headers['x-openvbs-delivery']);
    const payload = JSON.parse(atA[1]!.body);
    expect(payload).toMatchObject({
      project_id: pA,
      event: 'backup',
      status: 'success',
      job_id: job.job_id,
      subscription_id: hookA.id,
      subject: 'OpenVBS: Backup of volume data-disk succeeded',
      size_bytes: 2 * MiB,
      resources: [
        { type: 'volume', id: vol.id, name: 'data-disk' },
        { type: 'backup', id: job.entities.backup_id, name: 'nightly' },
      ],
    });
    expect(payload.duration_seconds).toBeGreaterThanOrEqual(0);
    const logA = (await deliveryLog()).filter((l) => l.subscription_id === hookA.id);
    expect(logA.map((l) => [l.attempt, l.outcome, l.http_status])).toEqual([
      [1, 'retrying', 503],
      [2, 'delivered', 204],
    ]);
    // failures only: no SMS for a success
    expect((await deliveryLog()).filter((l) => l.subscription_id === smsA.id)).toEqual([]);

    // B's subscribers got B's job and nothing of A's
    const atB = hooks.filter((h) => h.path === '/b');
    expect(atB.length).toBe(1);
    expect(JSON.parse(atB[0]!.body).project_id).toBe(pB);
    expect(mails.filter((m) => m.to.includes('bob@example.com')).map((m) => mailText(m.raw).includes('b-disk'))).toEqual([true]);
    expect(hooks.filter((h) => h.path === '/a').every((h) => JSON.parse(h.body).project_id === pA)).toBe(true);
    expect(mails.filter((m) => m.to.includes('alice@example.com')).every((m) => !mailText(m.raw).includes('b-disk'))).toBe(true);

    // a failed job: the reason reaches the email, the webhook and the recorded SMS
    const imagePath = join(home, 'shrinking.img');
    await writeDiskImage(imagePath, 2 * MiB, 3);
    const registered = await api('POST', `/v2/${pA}/volumes`, { volume: { name: 'shrinking', path: imagePath } });
    expect(registered.status).toBe(200);
    await truncate(imagePath, 4096);
    const failed = await backupJob(api, pA, registered.body.volume.id, 'doomed');
    expect(failed.status).toBe('FAIL');
    await settled();
    const failMail = mails.filter((m) => m.to.includes('alice@example.com')).map((m) => mailText(m.raw)).find((t) => t.includes('doomed'));
    expect(failMail).toMatch(/^Subject: OpenVBS: Backup of volume shrinking failed\r?$/m);
    expect(failMail).toMatch(/Reason: +.*short read/);
    const failHook = hooks.filter((h) => h.path === '/a').map((h) => JSON.parse(h.body)).find((b) => b.job_id === failed.job_id);
    expect(failHook).toMatchObject({ status: 'failure', fail_reason: expect.stringMatching(/short read/) });
    const sms = (await deliveryLog()).filter((l) => l.subscription_id === smsA.id);
    expect(sms.map((l) => l.outcome)).toEqual(['recorded']);
    expect(sms[0]!.text).toMatch(/^OpenVBS: Backup of volume shrinking failed: .*short read/);
    expect(hooks.filter((h) => h.path === '/b').length).toBe(1);

    // unsubscribed: nothing more reaches A's webhook
    expect((await api('DELETE', `/v1/${pA}/subscriptions/${hookA.id}`)).status).toBe(204);
    const before = hooks.length;
    expect((await backupJob(api, pA, vol.id, 'after')).status).toBe('SUCCESS');
    await settled();
    expect(hooks.slice(before).filter((h) => h.path === '/a')).toEqual([]);
    expect(mails.filter((m) => m.to.includes('alice@example.com')).length).toBe(3);
  });
});

describe('notifications on the aws backend: SNS subscriptions with the project filter policy', () => {
  let home: string;
  let svc: LocalService;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const k of ENV_KEYS) saved[k] = process.env[k];
    process.env.OPENVBS_SEGMENT_BLOCKS = '16';
    home = await mkdtemp(join(tmpdir(), 'openvbs-notify-aws-'));
    svc = await startService('aws', home);
  });

  afterAll(async () => {
    await svc?.stop();
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await rm(home, { recursive: true, force: true });
  });

  it('subscribes through SNS with a filter policy; an SQS subscriber of project A gets A’s message, B’s gets none', async () => {
    const { sns, sqs } = createClients();
    const topicArn = svc.runtime.config.backend === 'aws' ? svc.runtime.config.topicArn! : '';
    const pA = svc.projectId;
    const api = makeApi(svc, svc.token);
    const pB = `projb${randomBytes(6).toString('hex')}`;

    // the API's subscriptions are SNS subscriptions filtered to the project (and to failures when asked)
    const made = await api('POST', `/v1/${pA}/subscriptions`, { subscription: { protocol: 'email', endpoint: `ops-${pA}@example.com`, failures_only: true } });
    expect(made.status).toBe(201);
    expect(made.body.subscription.secret).toBeUndefined();
    expect(['pending_confirmation', 'confirmed']).toContain(made.body.subscription.status);
    const record = await svc.runtime.stores.subscriptions.get(pA, made.body.subscription.id);
    expect(record!.subscriptionArn).toMatch(/^arn:aws:sns:/);
    const attrs = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: record!.subscriptionArn }));
    expect(attrs.Attributes!.TopicArn).toBe(topicArn);
    expect(JSON.parse(attrs.Attributes!.FilterPolicy!)).toEqual({ project_id: [pA], status: ['failure'] });
    expect((await api('POST', `/v1/${pA}/subscriptions`, { subscription: { protocol: 'http', endpoint: 'http://127.0.0.1:9/x' } })).body.error.code).toBe('OpenVBS.1703');

    // SQS queues subscribed with the same policies as the API makes them
    const queueFor = async (projectId: string) => {
      const q = await sqs.send(new CreateQueueCommand({ QueueName: `ntf-${randomBytes(4).toString('hex')}` }));
      const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
      await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn, Attributes: { FilterPolicy: JSON.stringify(subscriptionFilterPolicy(projectId, false)) } }));
      return async () => {
        const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }));
        return (got.Messages ?? []).map((m) => JSON.parse(m.Body!) as { Subject: string; Message: string; MessageAttributes: Record<string, { Value: string }> });
      };
    };
    const inboxA = await queueFor(pA);
    const inboxB = await queueFor(pB);

    const vol = await newVolume(api, pA, 'aws-disk');
    const job = await backupJob(api, pA, vol.id, 'aws-nightly');
    expect(job.status).toBe('SUCCESS');
    await svc.workflows.idle();

    const gotA = await inboxA();
    expect(gotA.length).toBe(1);
    expect(gotA[0]!.Subject).toBe('OpenVBS: Backup of volume aws-disk succeeded');
    expect(gotA[0]!.MessageAttributes.project_id!.Value).toBe(pA);
    expect(gotA[0]!.MessageAttributes.status!.Value).toBe('success');
    const body = JSON.parse(gotA[0]!.Message);
    expect(body).toMatchObject({ project_id: pA, job_id: job.job_id, size_bytes: 2 * MiB, resources: [{ type: 'volume', id: vol.id, name: 'aws-disk' }, { type: 'backup', id: job.entities.backup_id }] });
    expect(body.text).toContain('Backup succeeded.');
    expect(await inboxB()).toEqual([]);

    // unsubscribing removes the SNS subscription
    expect((await api('DELETE', `/v1/${pA}/subscriptions/${made.body.subscription.id}`)).status).toBe(204);
    await expect(sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: record!.subscriptionArn }))).rejects.toThrow();
    expect((await api('GET', `/v1/${pA}/subscriptions`)).body.subscriptions).toEqual([]);
    sns.destroy();
    sqs.destroy();
  });
});

// The Notifier contract: every notification reaches a subscriber with its subject, its project_id, event and
// status attributes and the same body, so a subscriber can filter by project. The outbox is read as a
// subscriber filtering on the attributes would read it; SNS (on the run's emulator) delivers to SQS queues
// subscribed with a filter policy.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import { SnsNotifier } from '../../lib/aws/sns-notifier.ts';
import { OutboxNotifier } from '../../lib/embedded/outbox-notifier.ts';
import type { Notification, Notifier } from '../../lib/notify/notifier.ts';

const unique = () => randomBytes(4).toString('hex');

function notification(projectId: string, n: number, status: Notification['status'] = 'success'): Notification {
  return { projectId, event: 'backup', status, subject: `Backup ${n} of ${projectId}`, details: { job_id: `job-${n}`, backup_id: `b-${n}` } };
}

interface Delivered {
  subject: string;
  attributes: Record<string, string>;
  body: Record<string, unknown>;
}

interface Harness {
  notifier: Notifier;
  /** A subscriber that receives one project's notifications (of one status, when given). */
  subscribe(filter: { project_id: string[]; status?: string[] }): Promise<{ received(expected: number): Promise<Delivered[]> }>;
  close(): Promise<void>;
}

async function outboxLines(path: string) {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.trimEnd().split('\n').map((l) => JSON.parse(l));
}

const harnesses: Array<[string, () => Promise<Harness>]> = [
  [
    'OutboxNotifier',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'openvbs-outbox-'));
      const path = join(dir, 'notifications.jsonl');
      return {
        notifier: new OutboxNotifier(path),
        async subscribe(filter) {
          const matches = (attributes: Record<string, string>) =>
            filter.project_id.includes(attributes.project_id!) && (!filter.status || filter.status.includes(attributes.status!));
          return {
            async received() {
              const lines = await outboxLines(path);
              return lines.filter((l) => matches(l.attributes)).map((l) => ({ subject: l.subject, attributes: l.attributes, body: l.message }));
            },
          };
        },
        close: () => rm(dir, { recursive: true, force: true }),
      };
    },
  ],
  [
    'SnsNotifier',
    async () => {
      const { sns, sqs } = createClients();
      const topic = await sns.send(new CreateTopicCommand({ Name: `notify-${unique()}` }));
      return {
        notifier: new SnsNotifier(sns, topic.TopicArn!),
        async subscribe(filter) {
          const queue = await sqs.send(new CreateQueueCommand({ QueueName: `notify-${unique()}` }));
          const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }));
          await sns.send(
            new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'sqs', Endpoint: attrs.Attributes!.QueueArn, Attributes: { FilterPolicy: JSON.stringify(filter) } }),
          );
          const receive = async (wait: number) => {
            const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: wait }));
            return (res.Messages ?? []).map((m) => {
              const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string; MessageAttributes: Record<string, { Type: string; Value: string }> };
              for (const a of Object.values(envelope.MessageAttributes)) expect(a.Type).toBe('String');
              const attributes = Object.fromEntries(Object.entries(envelope.MessageAttributes).map(([name, a]) => [name, a.Value]));
              return { subject: envelope.Subject, attributes, body: JSON.parse(envelope.Message) };
            });
          };
          return {
            // Receives until `expected` arrived, then once more without waiting: nothing else may be there.
            async received(expected) {
              const got: Delivered[] = [];
              for (let round = 0; round < 10 && got.length < expected; round++) got.push(...(await receive(1)));
              got.push(...(await receive(0)));
              return got;
            },
          };
        },
        async close() {
          sns.destroy();
          sqs.destroy();
        },
      };
    },
  ],
];

describe.each(harnesses)('%s', (_name, open) => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await open();
  });
  afterAll(() => harness.close());

  it('delivers subject, attributes and body; a project subscription gets its own notifications only', async () => {
    const [projectA, projectB] = [`p-${unique()}`, `p-${unique()}`];
    const toA = await harness.subscribe({ project_id: [projectA] });
    const toB = await harness.subscribe({ project_id: [projectB] });
    const failuresOfA = await harness.subscribe({ project_id: [projectA], status: ['failure'] });

    await harness.notifier.publish(notification(projectA, 1));
    await harness.notifier.publish({ ...notification(projectA, 2, 'failure'), event: 'restore', details: { job_id: 'job-2', fail_reason: 'short read' } });
    await harness.notifier.publish(notification(projectB, 3));

    const gotA = await toA.received(2);
    expect(gotA.map((d) => d.body.job_id).sort()).toEqual(['job-1', 'job-2']);
    expect(gotA.find((d) => d.body.job_id === 'job-1')).toEqual({
      subject: `Backup 1 of ${projectA}`,
      attributes: { project_id: projectA, event: 'backup', status: 'success' },
      body: { project_id: projectA, event: 'backup', status: 'success', job_id: 'job-1', backup_id: 'b-1' },
    });
    expect(gotA.find((d) => d.body.job_id === 'job-2')).toEqual({
      subject: `Backup 2 of ${projectA}`,
      attributes: { project_id: projectA, event: 'restore', status: 'failure' },
      body: { project_id: projectA, event: 'restore', status: 'failure', job_id: 'job-2', fail_reason: 'short read' },
    });
    expect((await toB.received(1)).map((d) => d.body.job_id)).toEqual(['job-3']);
    expect((await failuresOfA.received(1)).map((d) => d.body.job_id)).toEqual(['job-2']);
  });
});

describe('OutboxNotifier on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openvbs-outbox-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes one JSON line per notification, with a timestamp, to a file of mode 0600 (its folder made if missing)', async () => {
    const path = join(dir, 'home', 'notifications.jsonl');
    await new OutboxNotifier(path).publish(notification('p-a', 1));
    const [line] = await outboxLines(path);
    expect(line).toEqual({
      at: expect.any(String),
      project_id: 'p-a',
      event: 'backup',
      status: 'success',
      subject: 'Backup 1 of p-a',
      message: { project_id: 'p-a', event: 'backup', status: 'success', job_id: 'job-1', backup_id: 'b-1' },
      attributes: { project_id: 'p-a', event: 'backup', status: 'success' },
    });
    expect(Number.isNaN(Date.parse(line.at))).toBe(false);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('keeps lines whole and in order when many are published at once, and appends to an existing outbox', async () => {
    const path = join(dir, 'concurrent.jsonl');
    await new OutboxNotifier(path).publish(notification('p-earlier', 0));
    const outbox = new OutboxNotifier(path);
    const big = 'x'.repeat(100_000); // far more than one write() is guaranteed to append at once
    await Promise.all(Array.from({ length: 40 }, (_, i) => outbox.publish({ ...notification('p-c', i + 1), details: { n: i + 1, big } })));
    const all = await outboxLines(path);
    expect(all.length).toBe(41);
    expect(all[0].project_id).toBe('p-earlier');
    expect(all.slice(1).map((l) => l.message.n)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(all.slice(1).every((l) => l.message.big === big)).toBe(true);
  });
});

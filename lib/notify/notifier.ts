// Notifications through one SNS topic. Every message carries `project_id`, `event` and `status` message
// attributes so a subscription (email, SMS, HTTPS, SQS) can filter to one project, or to failures only.
import { PublishCommand } from '@aws-sdk/client-sns';
import type { SNSClient } from '@aws-sdk/client-sns';

export type NotifyEvent = 'backup' | 'restore' | 'delete';
export type NotifyStatus = 'success' | 'failure';

export interface Notification {
  projectId: string;
  event: NotifyEvent;
  status: NotifyStatus;
  subject: string;
  /** Structured details (job id, backup id, reason...), sent as the JSON message body. */
  details: Record<string, unknown>;
}

export interface Notifier {
  publish(n: Notification): Promise<void>;
}

export class SnsNotifier implements Notifier {
  private readonly sns: SNSClient;
  private readonly topicArn: string;

  constructor(sns: SNSClient, topicArn: string) {
    this.sns = sns;
    this.topicArn = topicArn;
  }

  async publish(n: Notification): Promise<void> {
    const str = (value: string) => ({ DataType: 'String', StringValue: value });
    await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: n.subject.slice(0, 99),
        Message: JSON.stringify({ project_id: n.projectId, event: n.event, status: n.status, ...n.details }),
        MessageAttributes: { project_id: str(n.projectId), event: str(n.event), status: str(n.status) },
      }),
    );
  }
}

// Notifier on one SNS topic: the notification's attributes become message attributes, so a subscription's
// filter policy can select one project, or failures only.
import { PublishCommand } from '@aws-sdk/client-sns';
import type { SNSClient } from '@aws-sdk/client-sns';
import { notificationAttributes, notificationBody } from '../notify/notifier.ts';
import type { Notification, Notifier } from '../notify/notifier.ts';

export class SnsNotifier implements Notifier {
  private readonly sns: SNSClient;
  private readonly topicArn: string;

  constructor(sns: SNSClient, topicArn: string) {
    this.sns = sns;
    this.topicArn = topicArn;
  }

  async publish(n: Notification): Promise<void> {
    const attributes = Object.entries(notificationAttributes(n)).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]);
    await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: n.subject.slice(0, 99),
        Message: JSON.stringify(notificationBody(n)),
        MessageAttributes: Object.fromEntries(attributes),
      }),
    );
  }
}

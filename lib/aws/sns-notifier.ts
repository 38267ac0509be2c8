// Notifier on one SNS topic: the notification's attributes become message attributes, so a subscription's
// filter policy can select one project, or failures only. A notification with a readable text is sent with
// one message per protocol (MessageStructure json): email subscribers get the text, SMS the short line,
// everything else (HTTPS, SQS, email-json) the JSON body.
import { PublishCommand } from '@aws-sdk/client-sns';
import type { SNSClient } from '@aws-sdk/client-sns';
import { notificationAttributes, notificationBody, smsText } from '../notify/notifier.ts';
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
    const body = JSON.stringify(notificationBody(n));
    const perProtocol = n.text !== undefined ? { MessageStructure: 'json', Message: JSON.stringify({ default: body, email: n.text, sms: smsText(n) }) } : { Message: body };
    await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: n.subject.slice(0, 99),
        ...perProtocol,
        MessageAttributes: Object.fromEntries(attributes),
      }),
    );
  }
}

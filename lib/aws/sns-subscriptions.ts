// Subscriptions as SNS subscriptions on the notification topic, each with a filter policy on its project (and
// on status when it wants failures only). ReturnSubscriptionArn gives the ARN even while SNS waits for the
// confirmation, so a pending subscription can be followed and removed like a confirmed one.
import { GetSubscriptionAttributesCommand, InvalidParameterException, NotFoundException, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import type { SNSClient } from '@aws-sdk/client-sns';
import { EndpointTakenError } from '../catalog/subscriptions.ts';
import type { SubscriptionRecord, SubscriptionStatus } from '../catalog/subscriptions.ts';
import { EndpointRefusedError, subscriptionFilterPolicy } from '../notify/subscriptions.ts';
import type { SubscribeRequest, SubscriptionManager } from '../notify/subscriptions.ts';

export class SnsSubscriptionManager implements SubscriptionManager {
  readonly protocols = ['email', 'sms', 'https'] as const;
  readonly signsWebhooks = false;
  private readonly sns: SNSClient;
  private readonly topicArn: string;

  constructor(sns: SNSClient, topicArn: string) {
    this.sns = sns;
    this.topicArn = topicArn;
  }

  async subscribe(req: SubscribeRequest): Promise<{ status: SubscriptionStatus; subscriptionArn: string }> {
    const command = new SubscribeCommand({
      TopicArn: this.topicArn,
      Protocol: req.protocol,
      Endpoint: req.endpoint,
      ReturnSubscriptionArn: true,
      Attributes: { FilterPolicy: JSON.stringify(subscriptionFilterPolicy(req.projectId, req.failuresOnly)) },
    });
    const res = await this.sns.send(command).catch((err: unknown) => {
      if (!(err instanceof InvalidParameterException)) throw err;
      // SNS keeps one subscription per endpoint: one made outside OpenVBS (say, an operator alert) holds it
      if (/already exists/i.test(err.message)) throw new EndpointTakenError(`${req.protocol} endpoint already has a subscription on the topic`);
      throw new EndpointRefusedError(err.message);
    });
    const arn = res.SubscriptionArn;
    if (!arn || !arn.startsWith('arn:')) throw new Error(`SNS answered Subscribe without an ARN (${String(arn)})`);
    return { subscriptionArn: arn, status: await this.statusOf(arn) };
  }

  async status(sub: SubscriptionRecord): Promise<SubscriptionStatus> {
    return sub.subscriptionArn ? this.statusOf(sub.subscriptionArn) : sub.status;
  }

  async unsubscribe(sub: SubscriptionRecord): Promise<void> {
    if (!sub.subscriptionArn) return;
    try {
      await this.sns.send(new UnsubscribeCommand({ SubscriptionArn: sub.subscriptionArn }));
    } catch (err) {
      if (!(err instanceof NotFoundException)) throw err;
    }
  }

  private async statusOf(arn: string): Promise<SubscriptionStatus> {
    try {
      const res = await this.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: arn }));
      return res.Attributes?.PendingConfirmation === 'true' ? 'pending_confirmation' : 'confirmed';
    } catch (err) {
      // an unconfirmed subscription SNS has dropped
      if (err instanceof NotFoundException) return 'expired';
      throw err;
    }
  }
}

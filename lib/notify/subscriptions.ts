// The subscription manager port: where a project's notification subscriptions are made real. On AWS each is an
// SNS subscription on the topic with a filter policy (lib/aws/sns-subscriptions.ts), confirmed as SNS confirms
// them (email: the link SNS mails; HTTPS: the SubscriptionConfirmation request; SMS: at once). Locally the
// embedded notifier delivers to the catalog's subscriptions itself (lib/embedded/outbox-notifier.ts): nothing
// to confirm, and webhooks are signed with the subscription's secret.
import type { SubscriptionProtocol, SubscriptionRecord, SubscriptionStatus } from '../catalog/subscriptions.ts';

/** The delivery service refused the endpoint (SNS: InvalidParameter); the message says why. */
export class EndpointRefusedError extends Error {
  override name = 'EndpointRefusedError';
}

export interface SubscribeRequest {
  projectId: string;
  protocol: SubscriptionProtocol;
  endpoint: string;
  failuresOnly: boolean;
}

export interface SubscriptionManager {
  /** The protocols this deployment delivers to. */
  readonly protocols: readonly SubscriptionProtocol[];
  /** Webhook deliveries carry an HMAC signature made with the subscription's own secret (shown once). */
  readonly signsWebhooks: boolean;
  subscribe(req: SubscribeRequest): Promise<{ status: SubscriptionStatus; subscriptionArn?: string }>;
  /** The subscription's status now (a pending one may have been confirmed since). */
  status(sub: SubscriptionRecord): Promise<SubscriptionStatus>;
  /** Stops deliveries; a subscription already gone is not an error. */
  unsubscribe(sub: SubscriptionRecord): Promise<void>;
}

/** The SNS filter policy of a subscription: its project's messages, only failures when asked. */
export function subscriptionFilterPolicy(projectId: string, failuresOnly: boolean): Record<string, string[]> {
  return { project_id: [projectId], ...(failuresOnly ? { status: ['failure'] } : {}) };
}

/** Whether a notification of `projectId` with `status` reaches the subscription (the filter policy's rule). */
export function subscriptionMatches(sub: Pick<SubscriptionRecord, 'projectId' | 'failuresOnly'>, projectId: string, status: string): boolean {
  return sub.projectId === projectId && (!sub.failuresOnly || status === 'failure');
}

/** Local delivery (embedded backend): confirmed at once; plain-HTTP webhooks only when the operator allows them. */
export class LocalSubscriptionManager implements SubscriptionManager {
  readonly protocols: readonly SubscriptionProtocol[];
  readonly signsWebhooks = true;

  constructor(options: { allowHttp?: boolean } = {}) {
    this.protocols = options.allowHttp ? ['email', 'sms', 'https', 'http'] : ['email', 'sms', 'https'];
  }

  async subscribe(): Promise<{ status: SubscriptionStatus }> {
    return { status: 'confirmed' };
  }

  async status(sub: SubscriptionRecord): Promise<SubscriptionStatus> {
    return sub.status;
  }

  async unsubscribe(): Promise<void> {}
}

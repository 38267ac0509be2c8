// Notification subscriptions (OpenVBS extension): an admin of a project subscribes an email address, a phone
// number (SMS) or an HTTPS endpoint to the project's job notifications, all of them or failures only. The
// catalog keeps the subscriptions; the SubscriptionManager makes them real (SNS on AWS, local delivery in the
// embedded runtime). Codes OpenVBS.17xx (table in ./errors.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { EndpointTakenError, SUBSCRIPTION_PROTOCOLS } from '../catalog/subscriptions.ts';
import type { SubscriptionProtocol, SubscriptionRecord, SubscriptionStore } from '../catalog/subscriptions.ts';
import { EndpointRefusedError } from '../notify/subscriptions.ts';
import type { SubscriptionManager } from '../notify/subscriptions.ts';
import { ServiceError, badRequest, conflict, notFound } from './errors.ts';
import { checkProjectId, isId } from './ids.ts';

export const MAX_SUBSCRIPTIONS_PER_PROJECT = 20;
export const ENDPOINT_MAX = 2048;
export const EMAIL_MAX = 254;
/** E.164: a plus, then up to 15 digits, the first not 0. */
export const SMS_PATTERN = '^\\+[1-9][0-9]{6,14}$';
/** A mailbox: no spaces or brackets in the local part; a domain of dot-separated labels with at least one dot. */
export const EMAIL_PATTERN = '^[^\\s@<>()\\[\\],;:"\\\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$';

export interface CreateSubscriptionRequest {
  protocol: string;
  endpoint: string;
  failuresOnly?: boolean;
}

const invalid = (message: string) => badRequest('OpenVBS.1701', message);

function checkEndpoint(protocol: SubscriptionProtocol, endpoint: string): void {
  if (typeof endpoint !== 'string' || !endpoint) throw invalid('endpoint is required');
  if (endpoint.length > ENDPOINT_MAX) throw invalid(`endpoint must be at most ${ENDPOINT_MAX} characters`);
  switch (protocol) {
    case 'email':
      if (endpoint.length > EMAIL_MAX || !new RegExp(EMAIL_PATTERN).test(endpoint)) throw invalid(`endpoint is not an email address: ${endpoint}`);
      return;
    case 'sms':
      if (!new RegExp(SMS_PATTERN).test(endpoint)) throw invalid('an sms endpoint is a phone number in E.164 form, such as +4915112345678');
      return;
    case 'https':
    case 'http': {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw invalid(`endpoint is not a URL: ${endpoint}`);
      }
      if (url.protocol !== `${protocol}:`) throw invalid(`an ${protocol} endpoint is a URL starting with ${protocol}://`);
      if (!url.hostname) throw invalid('the endpoint URL has no host');
      // credentials in the URL would be stored and shown in listings
      if (url.username || url.password) throw invalid('the endpoint URL must not hold a user name or password');
      return;
    }
  }
}

export class SubscriptionService {
  private readonly store: SubscriptionStore;
  private readonly manager: SubscriptionManager | undefined;

  constructor(store: SubscriptionStore, manager?: SubscriptionManager) {
    this.store = store;
    this.manager = manager;
  }

  private delivery(): SubscriptionManager {
    if (!this.manager) throw conflict('OpenVBS.1705', 'this deployment has no notification topic: subscriptions cannot be made');
    return this.manager;
  }

  /** Subscribes the endpoint; `secret` (webhooks delivered locally) is returned here and never again. */
  async create(projectId: string, req: CreateSubscriptionRequest): Promise<{ record: SubscriptionRecord; secret?: string }> {
    checkProjectId(projectId);
    const manager = this.delivery();
    const protocol = req.protocol as SubscriptionProtocol;
    if (!SUBSCRIPTION_PROTOCOLS.includes(protocol)) throw invalid(`protocol must be one of ${manager.protocols.join(', ')}`);
    if (!manager.protocols.includes(protocol)) {
      if (protocol === 'http') throw new ServiceError(403, 'OpenVBS.1703', 'plain-HTTP endpoints are disabled in this deployment; use https (locally the operator may allow http with OPENVBS_ALLOW_HTTP_WEBHOOKS=1)');
      throw invalid(`protocol must be one of ${manager.protocols.join(', ')}`);
    }
    checkEndpoint(protocol, req.endpoint);
    if ((await this.store.list(projectId)).length >= MAX_SUBSCRIPTIONS_PER_PROJECT) {
      throw badRequest('OpenVBS.1704', `a project has at most ${MAX_SUBSCRIPTIONS_PER_PROJECT} subscriptions`);
    }

    const webhook = protocol === 'https' || protocol === 'http';
    const secret = webhook && manager.signsWebhooks ? `whsec_${randomBytes(24).toString('base64url')}` : undefined;
    const record: SubscriptionRecord = {
      projectId,
      subscriptionId: randomUUID(),
      protocol,
      endpoint: req.endpoint,
      failuresOnly: req.failuresOnly ?? false,
      status: 'pending_confirmation',
      createdAt: new Date().toISOString(),
      ...(secret ? { secret } : {}),
    };
    try {
      await this.store.create(record);
    } catch (err) {
      throw err instanceof EndpointTakenError ? taken() : err;
    }
    let made: Awaited<ReturnType<SubscriptionManager['subscribe']>>;
    try {
      made = await manager.subscribe({ projectId, protocol, endpoint: record.endpoint, failuresOnly: record.failuresOnly });
    } catch (err) {
      await this.store.delete(projectId, record.subscriptionId);
      if (err instanceof EndpointTakenError) throw taken();
      if (err instanceof EndpointRefusedError) throw invalid(`endpoint refused: ${err.message}`);
      throw err;
    }
    const patch = { status: made.status, ...(made.subscriptionArn ? { subscriptionArn: made.subscriptionArn } : {}) };
    const stored = (await this.store.update(projectId, record.subscriptionId, patch)) ?? { ...record, ...patch };
    return { record: stored, ...(secret ? { secret } : {}) };
  }

  /** The project's subscriptions, oldest first; pending ones are asked again whether they were confirmed. */
  async list(projectId: string): Promise<SubscriptionRecord[]> {
    checkProjectId(projectId);
    const records = await this.store.list(projectId);
    return Promise.all(records.map((r) => this.refreshed(r)));
  }

  async get(projectId: string, subscriptionId: string): Promise<SubscriptionRecord> {
    checkProjectId(projectId);
    const record = isId(subscriptionId) ? await this.store.get(projectId, subscriptionId) : undefined;
    if (!record) throw subscriptionNotFound(subscriptionId);
    return this.refreshed(record);
  }

  /** Unsubscribes the endpoint: no further notification reaches it. */
  async delete(projectId: string, subscriptionId: string): Promise<void> {
    checkProjectId(projectId);
    const record = isId(subscriptionId) ? await this.store.get(projectId, subscriptionId) : undefined;
    if (!record) throw subscriptionNotFound(subscriptionId);
    await this.manager?.unsubscribe(record);
    await this.store.delete(projectId, subscriptionId);
  }

  private async refreshed(record: SubscriptionRecord): Promise<SubscriptionRecord> {
    if (record.status !== 'pending_confirmation' || !this.manager) return record;
    const status = await this.manager.status(record);
    if (status === record.status) return record;
    return (await this.store.update(record.projectId, record.subscriptionId, { status })) ?? { ...record, status };
  }
}

export const subscriptionNotFound = (subscriptionId: string) => notFound(`subscription ${subscriptionId} not found`);
const taken = () => conflict('OpenVBS.1702', 'this endpoint already has a subscription (each address, number or URL has one, of one project); delete that one first');

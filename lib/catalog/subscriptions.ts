// Notification subscriptions (OpenVBS extension): who hears of a project's jobs, and how.
//
// Two items per subscription, written and removed together (one transaction):
//   pk "P#<project>"                              sk "SUB#<id>"   the record (listed per project)
//   pk "SUBEP#<protocol>#<sha256 of endpoint>"    sk "SUBEP"      the endpoint's claim
// An endpoint (an address, a phone number, a URL) has one subscription at a time, across projects: SNS keeps
// one subscription per (topic, protocol, endpoint) and would otherwise merge two projects' filter policies
// into one, or refuse the second. Email addresses are compared without regard to case.
import { createHash } from 'node:crypto';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Item, Table } from './table.ts';
import { SUBSCRIPTION_ENDPOINT_SORT_KEY, fromItem, projectKey, subscriptionEndpointKey, subscriptionSortKey } from './tables.ts';

/** `http` only where the operator allows it (local delivery); SNS subscriptions are email, sms or https. */
export const SUBSCRIPTION_PROTOCOLS = ['email', 'sms', 'https', 'http'] as const;
export type SubscriptionProtocol = (typeof SUBSCRIPTION_PROTOCOLS)[number];

/** `expired`: SNS dropped it unconfirmed (after three days); delete it and subscribe again. */
export const SUBSCRIPTION_STATUSES = ['pending_confirmation', 'confirmed', 'expired'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export interface SubscriptionRecord {
  projectId: string;
  subscriptionId: string;
  protocol: SubscriptionProtocol;
  endpoint: string;
  /** Only failures reach it. */
  failuresOnly: boolean;
  status: SubscriptionStatus;
  createdAt: string;
  /** The SNS subscription's ARN (AWS). */
  subscriptionArn?: string;
  /** Webhooks delivered locally: the HMAC key of their signature header (shown once, at creation). */
  secret?: string;
}

/** The endpoint already has a subscription (of this project or another). */
export class EndpointTakenError extends Error {
  override name = 'EndpointTakenError';
}

export interface SubscriptionStore {
  /** Stores the subscription and claims its endpoint; EndpointTakenError when it is claimed. */
  create(record: SubscriptionRecord): Promise<void>;
  get(projectId: string, subscriptionId: string): Promise<SubscriptionRecord | undefined>;
  /** The project's subscriptions, oldest first. */
  list(projectId: string): Promise<SubscriptionRecord[]>;
  /** Sets fields of an existing subscription; undefined when it is gone. */
  update(projectId: string, subscriptionId: string, patch: Partial<Pick<SubscriptionRecord, 'status' | 'subscriptionArn'>>): Promise<SubscriptionRecord | undefined>;
  /** Removes the subscription and its claim; the removed record, or undefined when there was none. */
  delete(projectId: string, subscriptionId: string): Promise<SubscriptionRecord | undefined>;
}

/** The form of an endpoint its claim is keyed by. */
export function endpointIdentity(protocol: SubscriptionProtocol, endpoint: string): string {
  return protocol === 'email' ? endpoint.toLowerCase() : endpoint;
}

const recordKey = (projectId: string, subscriptionId: string) => ({ pk: projectKey(projectId), sk: subscriptionSortKey(subscriptionId) });
const claimKey = (protocol: SubscriptionProtocol, endpoint: string) => ({
  pk: subscriptionEndpointKey(protocol, createHash('sha256').update(endpointIdentity(protocol, endpoint)).digest('hex')),
  sk: SUBSCRIPTION_ENDPOINT_SORT_KEY,
});

const toRecord = (item: Item) => fromItem<SubscriptionRecord>(item);
const byCreation = (a: SubscriptionRecord, b: SubscriptionRecord) =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.subscriptionId < b.subscriptionId ? -1 : 1;

export class TableSubscriptionStore implements SubscriptionStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async create(record: SubscriptionRecord): Promise<void> {
    try {
      await this.table.transact([
        { put: { ...recordKey(record.projectId, record.subscriptionId), ...record }, if: cond.notExists() },
        { put: { ...claimKey(record.protocol, record.endpoint), projectId: record.projectId, subscriptionId: record.subscriptionId }, if: cond.notExists() },
      ]);
    } catch (err) {
      if (err instanceof ConditionFailedError) throw new EndpointTakenError(`${record.protocol} endpoint already has a subscription`);
      throw err;
    }
  }

  async get(projectId: string, subscriptionId: string): Promise<SubscriptionRecord | undefined> {
    const item = await this.table.get(recordKey(projectId, subscriptionId));
    return item ? toRecord(item) : undefined;
  }

  async list(projectId: string): Promise<SubscriptionRecord[]> {
    const out: SubscriptionRecord[] = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: subscriptionSortKey('') } })) out.push(toRecord(item));
    return out.sort(byCreation);
  }

  async update(projectId: string, subscriptionId: string, patch: Partial<Pick<SubscriptionRecord, 'status' | 'subscriptionArn'>>): Promise<SubscriptionRecord | undefined> {
    try {
      return toRecord(await this.table.update(recordKey(projectId, subscriptionId), { set: patch }, cond.exists()));
    } catch (err) {
      if (err instanceof ConditionFailedError) return undefined;
      throw err;
    }
  }

  async delete(projectId: string, subscriptionId: string): Promise<SubscriptionRecord | undefined> {
    const record = await this.get(projectId, subscriptionId);
    if (!record) return undefined;
    try {
      await this.table.transact([
        { delete: recordKey(projectId, subscriptionId), if: cond.exists() },
        // the claim is this subscription's, unless a newer one took the endpoint after a crash left it behind
        { delete: claimKey(record.protocol, record.endpoint), if: cond.eq('subscriptionId', subscriptionId) },
      ]);
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
      // deleted meanwhile, or the claim is not ours: remove the record alone
      if (!(await this.get(projectId, subscriptionId))) return undefined;
      await this.table.delete(recordKey(projectId, subscriptionId));
    }
    return record;
  }
}

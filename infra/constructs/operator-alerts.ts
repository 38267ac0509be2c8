// Operator-wide alerts, chosen at deploy time: the context values `openvbs:alertEmails` and
// `openvbs:alertPhones` (comma-separated, or a JSON list in cdk.json) subscribe email addresses and phone
// numbers (E.164) to the notification topic for the failures of every project:
//   cdk deploy -c openvbs:alertEmails=ops@example.com,oncall@example.com -c openvbs:alertPhones=+4915112345678
// SNS mails each address a confirmation link; SMS subscriptions start at once. A project's own subscriptions go
// through the API (POST /v1/{project_id}/subscriptions), not here.
import { SubscriptionFilter } from 'aws-cdk-lib/aws-sns';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription, SmsSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { EMAIL_PATTERN, SMS_PATTERN } from '../../lib/service/subscriptions.ts';

export const ALERT_EMAILS_CONTEXT = 'openvbs:alertEmails';
export const ALERT_PHONES_CONTEXT = 'openvbs:alertPhones';

/** A context value as a list: a comma-separated string or a list of strings; empty entries dropped. */
function contextList(scope: Construct, key: string): string[] {
  const value: unknown = scope.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return [];
  const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
  if (!items || items.some((i) => typeof i !== 'string')) throw new Error(`context ${key} must be a comma-separated string or a list of strings`);
  return [...new Set((items as string[]).map((i) => i.trim()).filter(Boolean))];
}

/** Subscribes the operator's addresses and numbers to every project's failures. Returns what it subscribed. */
export function subscribeOperatorAlerts(scope: Construct, topic: ITopic): { emails: string[]; phones: string[] } {
  const emails = contextList(scope, ALERT_EMAILS_CONTEXT);
  const phones = contextList(scope, ALERT_PHONES_CONTEXT);
  for (const email of emails) if (!new RegExp(EMAIL_PATTERN).test(email)) throw new Error(`${ALERT_EMAILS_CONTEXT}: not an email address: ${email}`);
  for (const phone of phones) if (!new RegExp(SMS_PATTERN).test(phone)) throw new Error(`${ALERT_PHONES_CONTEXT}: not a phone number in E.164 form (+4915112345678): ${phone}`);
  const filterPolicy = { status: SubscriptionFilter.stringFilter({ allowlist: ['failure'] }) };
  for (const email of emails) topic.addSubscription(new EmailSubscription(email, { filterPolicy }));
  for (const phone of phones) topic.addSubscription(new SmsSubscription(phone, { filterPolicy }));
  return { emails, phones };
}

// Notifications in the stack: the API may make SNS subscriptions on the topic (and nothing wider), and the
// operator's alert addresses and numbers from the deploy-time context are subscribed for every project's
// failures.
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { ALERT_EMAILS_CONTEXT, ALERT_PHONES_CONTEXT, subscribeOperatorAlerts } from '../../infra/constructs/operator-alerts.ts';
import { STORAGE_LOGICAL_IDS } from '../../infra/constructs/storage.ts';
import { functionLogicalId } from '../../infra/handlers.ts';
import { HANDLER_NAMES } from '../../lib/workflows/registry.ts';
import { actionsOf, resourcesOf, roleStatements, template } from './helpers.ts';

function alertStack(context: Record<string, unknown>) {
  const app = new App({ context });
  const stack = new Stack(app, 'AlertTest');
  const topic = new Topic(stack, 'Topic');
  const subscribed = subscribeOperatorAlerts(stack, topic);
  return { subscribed, t: Template.fromStack(stack) };
}

describe('operator alerts from the context', () => {
  it('subscribes each email address and phone number to failures, deduplicated, from strings or lists', () => {
    const { subscribed, t } = alertStack({ [ALERT_EMAILS_CONTEXT]: ' ops@example.com, oncall@example.com,ops@example.com,', [ALERT_PHONES_CONTEXT]: ['+4915112345678'] });
    expect(subscribed).toEqual({ emails: ['ops@example.com', 'oncall@example.com'], phones: ['+4915112345678'] });
    const subs = Object.values(t.findResources('AWS::SNS::Subscription')).map((r) => r.Properties as { Protocol: string; Endpoint: string; FilterPolicy: unknown });
    expect(subs.map((s) => `${s.Protocol} ${s.Endpoint}`).sort()).toEqual(['email oncall@example.com', 'email ops@example.com', 'sms +4915112345678']);
    for (const s of subs) expect(s.FilterPolicy).toEqual({ status: ['failure'] });
  });

  it('subscribes nobody without the context', () => {
    const { subscribed, t } = alertStack({});
    expect(subscribed).toEqual({ emails: [], phones: [] });
    t.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('refuses what is not an address or an E.164 number', () => {
    expect(() => alertStack({ [ALERT_EMAILS_CONTEXT]: 'ops@example.com,not-an-address' })).toThrow(/not an email address: not-an-address/);
    expect(() => alertStack({ [ALERT_PHONES_CONTEXT]: '015112345678' })).toThrow(/E\.164/);
    expect(() => alertStack({ [ALERT_PHONES_CONTEXT]: { phone: '+4915112345678' } })).toThrow(/comma-separated string or a list of strings/);
  });
});

describe('subscription rights', () => {
  const topicRef = { Ref: STORAGE_LOGICAL_IDS.topic };
  const subscriptionActions = ['sns:Subscribe', 'sns:Unsubscribe', 'sns:GetSubscriptionAttributes'];

  it('lets the api function subscribe and unsubscribe on the topic alone; no other function', () => {
    const tpl = template();
    const roleOf = (name: (typeof HANDLER_NAMES)[number]) => {
      const fn = tpl.Resources[functionLogicalId(name)]!;
      return (fn.Properties!.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    };
    const api = roleStatements(tpl, roleOf('api')).filter((s) => actionsOf(s).some((a) => subscriptionActions.includes(a)));
    expect(api.length).toBe(1);
    expect(actionsOf(api[0]!).sort()).toEqual([...subscriptionActions].sort());
    expect(resourcesOf(api[0]!)).toEqual([topicRef]);
    for (const name of HANDLER_NAMES.filter((n) => n !== 'api')) {
      const granted = roleStatements(tpl, roleOf(name)).flatMap(actionsOf);
      expect({ name, granted: granted.filter((a) => subscriptionActions.includes(a) || a === 'sns:*') }).toEqual({ name, granted: [] });
    }
  });
});

// Notification subscriptions through the REST API: create (per-protocol endpoint checks, the webhook secret
// shown once), list, show, delete; one subscription per endpoint; admin tokens only; another project's
// subscriptions answer as missing ones; a deployment without a topic refuses. Real stores (SQLite in memory)
// and the local subscription manager; the SNS manager is exercised end to end (test/e2e/notifications.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { LocalSubscriptionManager } from '../../lib/notify/subscriptions.ts';
import { createServices } from '../../lib/service/factory.ts';
import type { ServiceDeps } from '../../lib/service/factory.ts';
import { MAX_SUBSCRIPTIONS_PER_PROJECT } from '../../lib/service/subscriptions.ts';
import { inventoryVolumes } from '../../lib/wiring/runtime.ts';
import { createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

let env: ServiceEnv;
const pA = projectId();
const pB = projectId();
const tokens: Record<string, string> = {};

function appWith(more: Partial<ServiceDeps>): ApiApp {
  const services = createServices({ stores: env.stores, keys: env.keys, workflows: env.workflows, provider: inventoryVolumes(env.stores), dataDir: env.dataDir, ...more });
  return createApiApp(services, { tokenCacheMs: 0 });
}

let app: ApiApp;

beforeAll(async () => {
  env = await createServiceEnv();
  app = appWith({ subscriptionManager: new LocalSubscriptionManager() });
  tokens.A = (await env.services.tokens.create(pA)).token;
  tokens.B = (await env.services.tokens.create(pB)).token;
  tokens.userA = (await env.services.tokens.create(pA, { scope: 'user' })).token;
});
afterAll(async () => env?.close());

async function call(method: string, path: string, token: string, body?: unknown, on: ApiApp = app) {
  const headers: Record<string, string> = { 'X-Auth-Token': token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await on.request(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const subscribe = (project: string, subscription: Record<string, unknown>, token = tokens[project === pA ? 'A' : 'B']!, on?: ApiApp) =>
  call('POST', `/v1/${project}/subscriptions`, token, { subscription }, on);

describe('subscriptions', () => {
  it('creates, lists, shows and deletes; a webhook’s secret is shown once', async () => {
    const email = await subscribe(pA, { protocol: 'email', endpoint: 'ops@example.com', failures_only: true });
    expect(email.status).toBe(201);
    expect(email.body.subscription).toEqual({
      id: expect.any(String),
      project_id: pA,
      protocol: 'email',
      endpoint: 'ops@example.com',
      failures_only: true,
      status: 'confirmed',
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/),
    });
    const hook = await subscribe(pA, { protocol: 'https', endpoint: 'https://hooks.example.com/openvbs?x=1' });
    expect(hook.status).toBe(201);
    expect(hook.body.subscription.failures_only).toBe(false);
    expect(hook.body.subscription.secret).toMatch(/^whsec_[A-Za-z0-9_-]{32}$/);
    const sms = await subscribe(pA, { protocol: 'sms', endpoint: '+4915112345678' });
    expect(sms.status).toBe(201);
    expect(sms.body.subscription.secret).toBeUndefined();

    const list = await call('GET', `/v1/${pA}/subscriptions`, tokens.A!);
    expect(list.status).toBe(200);
    expect(list.body.subscriptions.map((s: { id: string }) => s.id)).toEqual([email.body.subscription.id, hook.body.subscription.id, sms.body.subscription.id]);
    expect(list.body.subscriptions.every((s: Record<string, unknown>) => !('secret' in s))).toBe(true);

    const shown = await call('GET', `/v1/${pA}/subscriptions/${hook.body.subscription.id}`, tokens.A!);
    expect(shown.status).toBe(200);
    expect(shown.body.subscription).toEqual(list.body.subscriptions[1]);

    for (const s of [email, hook, sms]) expect((await call('DELETE', `/v1/${pA}/subscriptions/${s.body.subscription.id}`, tokens.A!)).status).toBe(204);
    const gone = await call('GET', `/v1/${pA}/subscriptions/${hook.body.subscription.id}`, tokens.A!);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('OpenVBS.0404');
    expect((await call('DELETE', `/v1/${pA}/subscriptions/${hook.body.subscription.id}`, tokens.A!)).status).toBe(404);
    expect((await call('GET', `/v1/${pA}/subscriptions`, tokens.A!)).body.subscriptions).toEqual([]);
  });

  it('checks each protocol’s endpoint, answering 400 OpenVBS.1701', async () => {
    for (const subscription of [
      { protocol: 'sqs', endpoint: 'arn:aws:sqs:us-east-1:000000000000:q' },
      { protocol: 'email', endpoint: 'not-an-address' },
      { protocol: 'email', endpoint: 'a b@example.com' },
      { protocol: 'email', endpoint: `${'x'.repeat(250)}@example.com` },
      { protocol: 'sms', endpoint: '015112345678' },
      { protocol: 'sms', endpoint: '+49 151 12345678' },
      { protocol: 'https', endpoint: 'http://hooks.example.com/' },
      { protocol: 'https', endpoint: 'hooks.example.com' },
      { protocol: 'https', endpoint: 'https://user:pw@hooks.example.com/' },
      { protocol: 'https', endpoint: `https://example.com/${'x'.repeat(2100)}` },
      { protocol: 'email', endpoint: '' },
    ]) {
      const res = await subscribe(pA, subscription);
      expect({ subscription, status: res.status, code: res.body.error.code }).toEqual({ subscription, status: 400, code: 'OpenVBS.1701' });
    }
    for (const subscription of [{ protocol: 'email' }, { protocol: 'email', endpoint: 'a@example.com', failures_only: 'yes' }, { protocol: 'email', endpoint: 'a@example.com', filter: 'x' }]) {
      const res = await subscribe(pA, subscription);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VolumeBackup.0002');
    }
    expect((await call('GET', `/v1/${pA}/subscriptions`, tokens.A!)).body.subscriptions).toEqual([]);
  });

  it('refuses plain-HTTP endpoints unless the operator allows them', async () => {
    const refused = await subscribe(pA, { protocol: 'http', endpoint: 'http://127.0.0.1:9/hook' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('OpenVBS.1703');
    const allowing = appWith({ subscriptionManager: new LocalSubscriptionManager({ allowHttp: true }) });
    const made = await subscribe(pA, { protocol: 'http', endpoint: 'http://127.0.0.1:9/hook' }, tokens.A, allowing);
    expect(made.status).toBe(201);
    expect(made.body.subscription.secret).toMatch(/^whsec_/);
    expect((await call('DELETE', `/v1/${pA}/subscriptions/${made.body.subscription.id}`, tokens.A!)).status).toBe(204);
  });

  it('gives an endpoint one subscription, across projects (email addresses in any case); free again once deleted', async () => {
    const first = await subscribe(pA, { protocol: 'email', endpoint: 'Team@Example.com' });
    expect(first.status).toBe(201);
    for (const [project, endpoint] of [
      [pA, 'Team@Example.com'],
      [pB, 'team@example.com'],
    ] as const) {
      const again = await subscribe(project, { protocol: 'email', endpoint, failures_only: true });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('OpenVBS.1702');
    }
    // the same address over another protocol is another endpoint
    expect((await subscribe(pB, { protocol: 'https', endpoint: 'https://example.com/team' })).status).toBe(201);
    expect((await call('DELETE', `/v1/${pA}/subscriptions/${first.body.subscription.id}`, tokens.A!)).status).toBe(204);
    const taken = await subscribe(pB, { protocol: 'email', endpoint: 'team@example.com' });
    expect(taken.status).toBe(201);
    expect((await call('GET', `/v1/${pA}/subscriptions`, tokens.A!)).body.subscriptions).toEqual([]);
    expect((await call('GET', `/v1/${pB}/subscriptions`, tokens.B!)).body.subscriptions.length).toBe(2);
  });

  it('needs an admin token, and answers 404 for another project’s subscription by either path', async () => {
    const user = await subscribe(pA, { protocol: 'email', endpoint: 'user@example.com' }, tokens.userA);
    expect(user.status).toBe(403);
    expect(user.body.error.code).toBe('OpenVBS.0403');
    expect((await call('GET', `/v1/${pA}/subscriptions`, tokens.userA!)).status).toBe(403);

    const ofB = (await call('GET', `/v1/${pB}/subscriptions`, tokens.B!)).body.subscriptions[0].id as string;
    const viaOwnPath = await call('DELETE', `/v1/${pA}/subscriptions/${ofB}`, tokens.A!);
    const viaOtherPath = await call('DELETE', `/v1/${pB}/subscriptions/${ofB}`, tokens.A!);
    const missing = await call('DELETE', `/v1/${pA}/subscriptions/no-such-id`, tokens.A!);
    expect([viaOwnPath.status, viaOtherPath.status]).toEqual([404, 404]);
    expect(viaOwnPath.body.error.code).toBe(missing.body.error.code);
    expect(viaOtherPath.body.error.message).toBe(`subscription ${ofB} not found`);
    expect((await call('GET', `/v1/${pB}/subscriptions/${ofB}`, tokens.B!)).status).toBe(200);
    expect((await call('GET', `/v1/${pB}/subscriptions`, tokens.A!)).status).toBe(404);
  });

  it(`keeps a project to ${MAX_SUBSCRIPTIONS_PER_PROJECT} subscriptions`, async () => {
    const p = projectId();
    const token = (await env.services.tokens.create(p)).token;
    for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_PROJECT; i++) expect((await subscribe(p, { protocol: 'https', endpoint: `https://example.com/${p}/${i}` }, token)).status).toBe(201);
    const over = await subscribe(p, { protocol: 'https', endpoint: `https://example.com/${p}/over` }, token);
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('OpenVBS.1704');
  });

  it('refuses subscriptions where the deployment has no notification topic', async () => {
    const without = appWith({});
    const res = await subscribe(pA, { protocol: 'email', endpoint: 'nobody@example.com' }, tokens.A, without);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('OpenVBS.1705');
    expect((await call('GET', `/v1/${pA}/subscriptions`, tokens.A!, undefined, without)).status).toBe(200);
  });
});

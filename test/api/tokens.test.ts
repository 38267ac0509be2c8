// Tokens through the REST API: scopes (a user token is refused the admin routes with 403), listing without
// secrets, revocation that takes effect at once despite the token cache, expiry, and the scope that the
// API Gateway authorizer hands to the app. Real stores (SQLite in memory); workflows recorded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { TokenCache } from '../../lib/api/auth.ts';
import { authorizeToken } from '../../lib/api/authorizer.ts';
import type { TokenRecord } from '../../lib/catalog/tokens.ts';
import { TokenRevocations } from '../../lib/service/tokens.ts';
import { backupRecord, createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';
import { appCaller } from '../support/app-call.ts';

let env: ServiceEnv;
let app: ApiApp;
let lookups = 0;
const p = projectId();
let admin: string;

beforeAll(async () => {
  env = await createServiceEnv();
  const tokens = env.services.tokens;
  const authenticate = tokens.authenticate.bind(tokens);
  tokens.authenticate = async (token) => {
    lookups++;
    return authenticate(token);
  };
  // A long cache: only a revocation may make it ask the store again.
  app = createApiApp(env.services, { tokenCacheMs: 3_600_000 });
  admin = (await env.services.tokens.create(p)).token;
});
afterAll(async () => env?.close());

const request = appCaller(() => app, () => admin);
const call = (method: string, path: string, token: string, body?: unknown) => request(method, path, body, token);

async function newToken(token: Record<string, unknown> = {}) {
  const res = await call('POST', `/v1/${p}/tokens`, admin, { token });
  expect(res.status).toBe(201);
  return res.body.token as { id: string; token: string; scope: string; created_at: string; expires_at: string | null };
}

describe('scopes', () => {
  it('refuses a user token the inventory, keys and tokens with 403 in the error shape, and lets it back up', async () => {
    const user = await newToken({ scope: 'user', description: 'ci' });
    expect(user.scope).toBe('user');
    const vol = await env.services.volumes.create(p, { name: 'disk', sizeBytes: 4096 });
    for (const [method, path, body] of [
      ['GET', `/v2/${p}/volumes`],
      ['POST', `/v2/${p}/volumes`, { volume: { name: 'x', size: 1 } }],
      ['GET', `/v2/${p}/volumes/${vol.volumeId}`],
      ['DELETE', `/v2/${p}/volumes/${vol.volumeId}`],
      ['GET', `/v1/${p}/tokens`],
      ['POST', `/v1/${p}/tokens`, { token: { scope: 'admin' } }],
      ['DELETE', `/v1/${p}/tokens/${user.id}`],
      ['GET', `/v1/${p}/keys`],
      ['POST', `/v1/${p}/keys`, {}],
      ['GET', `/v2/${p}/volumes%2F..`],
    ] as Array<[string, string, unknown?]>) {
      const res = await call(method, path, user.token, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe('OpenVBS.0403');
      expect(res.body.error.message).toMatch(/admin token/);
    }
    expect(await env.services.volumes.get(p, vol.volumeId)).toMatchObject({ volumeId: vol.volumeId });

    const backup = backupRecord(p);
    await env.stores.backups.createBackup(backup);
    expect((await call('GET', `/v2/${p}/backups/detail`, user.token)).status).toBe(200);
    expect((await call('GET', `/v2/${p}/backups/${backup.backupId}`, user.token)).status).toBe(200);
    expect((await call('GET', `/v2/${p}/cloudbackups/quota`, user.token)).status).toBe(200);
    const started = await call('POST', `/v2/${p}/cloudbackups`, user.token, { backup: { volume_id: vol.volumeId, name: 'by-user' } });
    expect(started.status).toBe(200);
    expect((await call('GET', `/v1/${p}/jobs/${started.body.job_id}`, user.token)).status).toBe(200);
    // another project's admin routes still answer as missing, not as forbidden
    expect((await call('GET', `/v2/${projectId()}/volumes`, user.token)).status).toBe(404);
  });

  it('lets an admin token use the inventory and tokens', async () => {
    expect((await call('GET', `/v2/${p}/volumes`, admin)).status).toBe(200);
    expect((await call('GET', `/v1/${p}/tokens`, admin)).status).toBe(200);
    const minted = await newToken({ scope: 'admin' });
    expect((await call('GET', `/v1/${p}/keys`, minted.token)).status).toBe(200);
  });

  it('takes the scope from the authorizer context behind API Gateway, a context without one counting as user', async () => {
    const trusting = createApiApp(env.services, { trustAuthorizerContext: true });
    const as = (authorizer: Record<string, string>) => trusting.request(`/v2/${p}/volumes`, {}, { requestContext: { authorizer } });
    expect((await as({ projectId: p, scope: 'admin' })).status).toBe(200);
    expect((await as({ projectId: p, scope: 'user' })).status).toBe(403);
    expect((await as({ projectId: p })).status).toBe(403);
    expect((await as({ projectId: p, scope: 'ADMIN' })).status).toBe(403);

    const user = await newToken({ scope: 'user' });
    const methodArn = 'arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/GET/v2/p/backups';
    const result = await authorizeToken({ authorizationToken: user.token, methodArn }, (t) => env.services.tokens.authenticate(t));
    expect(result.context).toEqual({ projectId: p, scope: 'user' });
  });
});

describe('listing', () => {
  it('lists the project’s tokens with scope and expiry, never a secret', async () => {
    const q = projectId();
    const qAdmin = (await env.services.tokens.create(q, { description: 'bootstrap' })).token;
    const user = (await call('POST', `/v1/${q}/tokens`, qAdmin, { token: { scope: 'user', description: 'ci', expires_in: 3600 } })).body.token;
    const res = await call('GET', `/v1/${q}/tokens`, qAdmin);
    expect(res.status).toBe(200);
    expect(res.body.tokens).toHaveLength(2);
    for (const t of res.body.tokens) expect(Object.keys(t).sort()).toEqual(['created_at', 'description', 'expires_at', 'id', 'project_id', 'scope']);
    expect(res.body.tokens.map((t: { description: string; scope: string }) => [t.description, t.scope]).sort()).toEqual([
      ['bootstrap', 'admin'],
      ['ci', 'user'],
    ]);
    expect(res.body.tokens.find((t: { id: string }) => t.id === user.id)).toMatchObject({ expires_at: user.expires_at });
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(qAdmin);
    expect(text).not.toContain(user.token);
    expect(text).not.toContain('ovbs_');
    // another project's tokens do not show
    expect((await call('GET', `/v1/${p}/tokens`, admin)).body.tokens.some((t: { id: string }) => t.id === user.id)).toBe(false);
  });
});

describe('revocation', () => {
  it('refuses a revoked token at once although it was cached, and answers 404 for an unknown or foreign id', async () => {
    const doomed = await newToken({ scope: 'user' });
    expect((await call('GET', `/v2/${p}/backups`, doomed.token)).status).toBe(200);
    const before = lookups;
    expect((await call('GET', `/v2/${p}/backups`, doomed.token)).status).toBe(200);
    expect(lookups).toBe(before); // served from the cache

    const revoked = await call('DELETE', `/v1/${p}/tokens/${doomed.id}`, admin);
    expect(revoked.status).toBe(204);
    expect(revoked.body).toBeUndefined();
    const refused = await call('GET', `/v2/${p}/backups`, doomed.token);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('OpenVBS.0401');

    const again = await call('DELETE', `/v1/${p}/tokens/${doomed.id}`, admin);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('OpenVBS.0404');
    const q = projectId();
    const foreign = await env.services.tokens.create(q);
    const missingOwn = await call('DELETE', `/v1/${p}/tokens/${foreign.record.tokenId}`, admin);
    expect(missingOwn.status).toBe(404);
    // the other project's path answers exactly as a missing token of one's own
    const foreignPath = await call('DELETE', `/v1/${q}/tokens/${foreign.record.tokenId}`, admin);
    expect(foreignPath).toEqual(missingOwn);
    expect(await env.services.tokens.authenticate(foreign.token)).toMatchObject({ projectId: q });
  });

  it('lets a token revoke itself', async () => {
    const self = await newToken({ scope: 'admin' });
    expect((await call('DELETE', `/v1/${p}/tokens/${self.id}`, self.token)).status).toBe(204);
    expect((await call('GET', `/v1/${p}/tokens`, self.token)).status).toBe(401);
  });
});

describe('expiry', () => {
  it('issues tokens that expire after expires_in seconds, and refuses bad expiries and unknown fields with 400', async () => {
    const lived = await newToken({ expires_in: 600 });
    expect(Date.parse(lived.expires_at!) - Date.parse(lived.created_at)).toBe(600_000);
    for (const token of [{ expires_in: 0 }, { expires_in: 'soon' }, { expires_at: '2099-01-01T00:00:00Z' }, { scope: 'root' }]) {
      const res = await call('POST', `/v1/${p}/tokens`, admin, { token });
      expect(res.status, JSON.stringify(token)).toBe(400);
      expect(res.body.error.code).toMatch(/^(VolumeBackup\.0002|OpenVBS\.1301)$/);
    }
  });

  it('refuses an expired token', async () => {
    const expired = await env.stores.tokens.issue(p, 'expired', { expiresAt: new Date(Date.now() - 1000) });
    const res = await call('GET', `/v2/${p}/backups`, expired.token);
    expect(res.status).toBe(401);
  });

  it('never serves a cached token past its expiry', async () => {
    let now = Date.parse('2030-01-01T00:00:00.000Z');
    const record: TokenRecord = { tokenId: 't1', projectId: p, scope: 'user', createdAt: '2029-12-31T00:00:00.000Z', expiresAt: '2030-01-01T00:00:10.000Z' };
    let asked = 0;
    const cache = new TokenCache(
      async () => {
        asked++;
        return now < Date.parse(record.expiresAt!) ? record : undefined;
      },
      3_600_000,
      { now: () => now, revocations: new TokenRevocations() },
    );
    expect(await cache.identify('secret')).toEqual(record);
    now += 9_000;
    expect(await cache.identify('secret')).toEqual(record);
    expect(asked).toBe(1);
    now += 1_000;
    expect(await cache.identify('secret')).toBeUndefined();
    expect(asked).toBe(2);
  });
});

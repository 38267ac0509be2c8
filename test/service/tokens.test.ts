// The token service on real stores (SQLite in memory): scopes, expiry, listing and revocation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TOKEN_LIFETIME_SECONDS, TokenRevocations, TokenService } from '../../lib/service/tokens.ts';
import { createServiceEnv, expectServiceError as expectError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;

beforeAll(async () => {
  env = await createServiceEnv();
});
afterAll(async () => env?.close());

describe('token scopes and expiry', () => {
  it('issues admin tokens unless asked for user ones', async () => {
    const p = projectId();
    const admin = await env.services.tokens.create(p);
    const user = await env.services.tokens.create(p, { scope: 'user' });
    expect(await env.services.tokens.authenticate(admin.token)).toMatchObject({ projectId: p, scope: 'admin' });
    expect(await env.services.tokens.authenticate(user.token)).toMatchObject({ projectId: p, scope: 'user' });
    await expectError(env.services.tokens.create(p, { scope: 'root' as 'admin' }), 400, 'OpenVBS.1301');
  });

  it('sets the expiry from a lifetime, and refuses tokens once they have expired', async () => {
    const p = projectId();
    const { record, token } = await env.services.tokens.create(p, { expiresInSeconds: 3600 });
    expect(Date.parse(record.expiresAt!) - Date.parse(record.createdAt)).toBe(3600 * 1000);
    expect(await env.services.tokens.authenticate(token)).toMatchObject({ projectId: p });

    const expired = await env.stores.tokens.issue(p, 'old', { expiresAt: new Date(Date.now() - 1000) });
    expect(await env.services.tokens.authenticate(expired.token)).toBeUndefined();
  });

  it('refuses lifetimes that are not a whole number of seconds from 1 to about ten years', async () => {
    const p = projectId();
    for (const req of [
      { expiresInSeconds: 0 },
      { expiresInSeconds: 1.5 },
      { expiresInSeconds: MAX_TOKEN_LIFETIME_SECONDS + 1 },
      { expiresInSeconds: 1e300 },
    ]) {
      await expectError(env.services.tokens.create(p, req), 400, 'OpenVBS.1301');
    }
    expect(await env.services.tokens.list(p)).toEqual([]);
  });
});

describe('listing and revoking', () => {
  it('lists the project’s own tokens and revokes one by id (404 for another project’s or an unknown id)', async () => {
    const [p, q] = [projectId(), projectId()];
    const a = await env.services.tokens.create(p, { description: 'a' });
    const b = await env.services.tokens.create(p, { description: 'b', scope: 'user' });
    const theirs = await env.services.tokens.create(q);
    expect((await env.services.tokens.list(p)).map((t) => t.tokenId).sort()).toEqual([a.record.tokenId, b.record.tokenId].sort());

    await expectError(env.services.tokens.revoke(p, theirs.record.tokenId), 404, 'OpenVBS.0404');
    await expectError(env.services.tokens.revoke(p, '../x'), 404, 'OpenVBS.0404');
    expect(await env.services.tokens.authenticate(theirs.token)).toMatchObject({ projectId: q });

    await env.services.tokens.revoke(p, a.record.tokenId);
    expect(await env.services.tokens.authenticate(a.token)).toBeUndefined();
    expect((await env.services.tokens.list(p)).map((t) => t.tokenId)).toEqual([b.record.tokenId]);
    await expectError(env.services.tokens.revoke(p, a.record.tokenId), 404, 'OpenVBS.0404');
    await expectError(env.services.tokens.list('a/b'), 400, 'OpenVBS.0400');
  });

  it('announces each revocation to the caches of the process, and only a revocation that happened', async () => {
    const revocations = new TokenRevocations();
    const service = new TokenService(env.stores.tokens, revocations);
    const p = projectId();
    const { record } = await service.create(p);
    await expectError(service.revoke(p, 'nothing-here'), 404, 'OpenVBS.0404');
    expect(revocations.generation).toBe(0);
    await service.revoke(p, record.tokenId);
    expect(revocations.generation).toBe(1);
  });
});

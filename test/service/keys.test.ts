// Customer keys of a project over the local key service: alias rules, duplicates, ownership.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceEnv, expectServiceError as expectError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;

beforeAll(async () => {
  env = await createServiceEnv();
});
afterAll(async () => env?.close());

describe('customer keys', () => {
  it('creates keys owned by the project and lists only the project’s, oldest first', async () => {
    const a = projectId();
    const b = projectId();
    const first = await env.services.keys.create(a, { alias: `alias/a-${a}`, description: 'finance disks' });
    expect(first).toMatchObject({ alias: `alias/a-${a}`, description: 'finance disks', enabled: true, owner: a });
    expect(first.arn).toContain(first.keyId);
    const second = await env.services.keys.create(a);
    expect(second.alias).toBeUndefined();
    expect(second.description).toBeUndefined();
    await env.services.keys.create(b, { alias: `alias/b-${b}` });

    expect((await env.services.keys.list(a)).map((k) => k.keyId)).toEqual([first.keyId, second.keyId]);
    expect((await env.services.keys.list(b)).map((k) => k.owner)).toEqual([b]);
    expect(await env.services.keys.list(projectId())).toEqual([]);
  });

  it('applies the alias rules', async () => {
    const p = projectId();
    for (const alias of ['finance', 'alias/', 'alias/has space', 'alias/dots.not.allowed', `alias/${'x'.repeat(251)}`, 'alias/ü', 'ALIAS/x']) {
      await expectError(env.services.keys.create(p, { alias }), 400, 'OpenVBS.1201');
    }
    for (const alias of ['alias/aws/ebs', 'alias/AWS/ebs', 'alias/openvbs', 'alias/openvbs-service', 'alias/OpenVBS/x']) {
      const err = await expectError(env.services.keys.create(p, { alias }), 400, 'OpenVBS.1201');
      expect(err.message).toMatch(/reserved/);
    }
    await expectError(env.services.keys.create(p, { description: 'd'.repeat(256) }), 400, 'OpenVBS.1201');
    await expectError(env.services.keys.create('no/such project'), 400, 'OpenVBS.0400');
    expect(await env.services.keys.list(p)).toEqual([]);
    // the longest alias and every allowed character
    const longest = `alias/${'a'.repeat(240)}-_/Z9${p.slice(0, 5)}`;
    expect((await env.services.keys.create(p, { alias: longest })).alias).toBe(longest);
  });

  it('answers 409 OpenVBS.1202 for an alias in use, by this project or another', async () => {
    const p = projectId();
    const alias = `alias/dup-${p}`;
    await env.services.keys.create(p, { alias });
    await expectError(env.services.keys.create(p, { alias }), 409, 'OpenVBS.1202');
    const other = projectId();
    const err = await expectError(env.services.keys.create(other, { alias }), 409, 'OpenVBS.1202');
    expect(err.message).toBe(`alias ${alias} is already in use`); // says nothing of the owner
    expect(await env.services.keys.list(other)).toEqual([]);
    expect(await env.services.keys.list(p)).toHaveLength(1);
  });

  it('lets only one of two concurrent requests take an alias', async () => {
    const p = projectId();
    const alias = `alias/race-${p}`;
    const results = await Promise.allSettled([1, 2, 3].map(() => env.services.keys.create(p, { alias })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ httpStatus: 409, code: 'OpenVBS.1202' });
  });
});

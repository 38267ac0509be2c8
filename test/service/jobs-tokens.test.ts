// The job and token services on real stores (SQLite in memory).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceEnv, expectServiceError as expectError, projectId } from './service-env.ts';
import type { ServiceEnv } from './service-env.ts';

let env: ServiceEnv;

beforeAll(async () => {
  env = await createServiceEnv();
});
afterAll(async () => env?.close());

describe('jobs', () => {
  it('answers common.0011 for an unknown job or another project’s', async () => {
    const p = projectId();
    const vol = await env.services.volumes.create(p, { name: 'disk', sizeBytes: 4096 });
    const { jobId } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'j' });
    expect((await env.services.jobs.get(p, jobId)).jobId).toBe(jobId);
    await expectError(env.services.jobs.get(projectId(), jobId), 404, 'common.0011');
    await expectError(env.services.jobs.get(p, 'missing'), 404, 'common.0011');
    await expectError(env.services.jobs.get(p, '../x'), 404, 'common.0011');
    await expectError(env.services.jobs.get('../p', jobId), 404, 'common.0011');
  });

  it('cancels a running job by stopping its execution with the reason "cancelled", and refuses an ended one', async () => {
    const p = projectId();
    const vol = await env.services.volumes.create(p, { name: 'disk', sizeBytes: 4096 });
    const { jobId } = await env.services.backups.create(p, { volumeId: vol.volumeId, name: 'to-cancel' });
    const job = await env.services.jobs.get(p, jobId);
    await env.services.jobs.cancel(p, jobId);
    expect(env.workflows.stops).toContainEqual({ executionArn: job.executionArn, reason: { error: 'OpenVBS.Cancelled', cause: 'cancelled' } });

    await env.stores.jobs.update(p, jobId, { status: 'FAIL', endTime: new Date().toISOString(), failReason: 'cancelled' });
    await expectError(env.services.jobs.cancel(p, jobId), 409, 'OpenVBS.1005');
    await expectError(env.services.jobs.cancel(projectId(), jobId), 404, 'common.0011');
  });
});

describe('tokens', () => {
  it('issues tokens bound to a project and authenticates them', async () => {
    const p = projectId();
    const { token, record } = await env.services.tokens.create(p, { description: 'ci' });
    expect(record.projectId).toBe(p);
    expect(await env.services.tokens.authenticate(token)).toMatchObject({ projectId: p, scope: 'admin' });
    expect(await env.services.tokens.authenticate(`${token}x`)).toBeUndefined();
    expect(await env.services.tokens.authenticate('')).toBeUndefined();
    expect(await env.services.tokens.authenticate(undefined)).toBeUndefined();
  });

  it('refuses a bad project id or a long description', async () => {
    await expectError(env.services.tokens.create('a/b'), 400, 'OpenVBS.0400');
    await expectError(env.services.tokens.create(projectId(), { description: 'd'.repeat(256) }), 400, 'VolumeBackup.0002');
  });
});

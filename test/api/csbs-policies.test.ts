// CSBS backup policies through the REST API app: shapes as the public SDK fixtures give them, validation with its
// codes (RRULEs more often than hourly refused, numbers as strings accepted), a server in at most one policy,
// status, execute now. Real stores (SQLite in memory); the workflows are only recorded (the runs themselves
// are tested in test/integration/csbs-policies-time-travel.test.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { VBS_TIME_PATTERN } from '../../lib/api/schemas.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import { projectId } from '../service/service-env.ts';
import { useApiProject } from '../support/api-project.ts';

const p = projectId();
const api = useApiProject(p);
const call = api.call;

const V1 = `/v1/${p}`;
const SERVER = 'OS::Nova::Server';
const VCALENDAR = 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRRULE:FREQ=WEEKLY;BYDAY=TH;BYHOUR=12;BYMINUTE=27\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';

let serial = 0;
async function newServer(name: string): Promise<string> {
  const disks = [];
  for (let i = 0; i < 2; i++) disks.push({ volumeId: (await api.env.services.volumes.create(p, { name: `${name}-d${i}-${serial++}`, sizeBytes: 1024 * 1024 })).volumeId });
  return (await api.env.services.servers.create(p, { name, status: 'running', disks })).serverId;
}

/** The SDK fixture's create body, on our own server. */
function fixtureBody(serverId: string, name = 'c2c-policy') {
  return {
    policy: {
      name,
      description: 'My plan',
      provider_id: CSBS_PROVIDER_ID,
      parameters: { common: {} },
      scheduled_operations: [
        { name: 'my-backup-policy', description: 'My backup policy', enabled: true, operation_definition: { max_backups: 20, permanent: false }, trigger: { properties: { pattern: VCALENDAR } }, operation_type: 'backup' },
      ],
      resources: [{ id: serverId, type: SERVER, name: 'resource1' }],
    },
  };
}

const withOperation = (serverId: string, op: Record<string, unknown>, definition: Record<string, unknown> = { max_backups: 5 }) => {
  const body = fixtureBody(serverId, `p${serial++}`);
  return { policy: { ...body.policy, resources: [], scheduled_operations: [{ operation_type: 'backup', trigger: { properties: { pattern: 'FREQ=DAILY;BYHOUR=3;BYMINUTE=0' } }, operation_definition: definition, ...op }] } };
};

describe('CSBS backup policies API', () => {
  let serverA: string;
  let policyId: string;

  beforeAll(async () => {
    serverA = await newServer('app-a');
  });

  it('creates a policy from the SDK fixture body and shows it in the fixture’s shape', async () => {
    const created = await call('POST', `${V1}/policies`, fixtureBody(serverA));
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const policy = created.body.policy;
    policyId = policy.id;
    const [op] = policy.scheduled_operations;
    expect(policy).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'c2c-policy',
      description: 'My plan',
      provider_id: CSBS_PROVIDER_ID,
      project_id: p,
      parameters: { common: {} },
      created_at: expect.stringMatching(VBS_TIME_PATTERN),
      status: 'enabled',
      resources: [{ id: serverA, type: SERVER, name: 'app-a' }],
      scheduled_operations: [
        {
          id: op.id,
          name: 'my-backup-policy',
          description: 'My backup policy',
          enabled: true,
          operation_type: 'backup',
          trigger_id: op.id,
          trigger: { id: op.id, name: 'default', type: 'time', properties: { pattern: VCALENDAR, start_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/) } },
          operation_definition: { max_backups: 20, permanent: false, plan_id: policyId, provider_id: CSBS_PROVIDER_ID },
        },
      ],
      tags: [],
      user_id: null,
    });
    const shown = await call('GET', `${V1}/policies/${policyId}`);
    expect(shown.status).toBe(200);
    expect(shown.body.policy).toEqual(policy);
    // A user token reaches policies (they make backups).
    expect((await call('GET', `${V1}/policies/${policyId}`, undefined, api.userToken)).status).toBe(200);
  });

  it('accepts numbers and flags as strings (as some CSBS clients send them), generations with a timezone, and answers numbers', async () => {
    const res = await call(
      'POST',
      `${V1}/policies`,
      withOperation(serverA, { enabled: 'true' }, { max_backups: '7', retention_duration_days: '-1', permanent: 'false', day_backups: '3', week_backups: 2, month_backups: '1', timezone: 'UTC+08:00' }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const { plan_id, provider_id, ...definition } = res.body.policy.scheduled_operations[0].operation_definition;
    expect([plan_id, provider_id]).toEqual([res.body.policy.id, CSBS_PROVIDER_ID]);
    expect(definition).toEqual({ max_backups: 7, retention_duration_days: -1, permanent: false, day_backups: 3, week_backups: 2, month_backups: 1, timezone: 'UTC+08:00' });
    // A timezone given as whole hours (the SDK's int) is stored as UTC±HH:MM.
    const hours = await call('POST', `${V1}/policies`, withOperation(serverA, {}, { year_backups: 1, timezone: -3 }));
    expect(hours.status, JSON.stringify(hours.body)).toBe(200);
    expect(hours.body.policy.scheduled_operations[0].operation_definition.timezone).toBe('UTC-03:00');
    for (const id of [res.body.policy.id, hours.body.policy.id]) expect((await call('DELETE', `${V1}/policies/${id}`)).status).toBe(200);
  });

  it.each([
    ['FREQ=HOURLY', { pattern: 'FREQ=HOURLY' }, 'DAILY or WEEKLY'],
    ['FREQ=MINUTELY', { pattern: 'FREQ=MINUTELY;INTERVAL=90' }, 'DAILY or WEEKLY'],
    ['a daily rule firing every 30 minutes', { pattern: 'FREQ=DAILY;BYHOUR=1;BYMINUTE=0,30' }, 'more often than once an hour'],
    ['a weekly rule with two runs 20 minutes apart', { pattern: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=1;BYMINUTE=10,30' }, 'more often than once an hour'],
    ['an RRULE part CSBS does not document', { pattern: 'FREQ=DAILY;BYHOUR=1;BYSECOND=5' }, 'BYSECOND'],
    ['no pattern', { pattern: undefined }, 'pattern is required'],
    ['operation_type restore', { operation_type: 'restore' }, 'operation_type'],
  ])('refuses %s with OpenVBS.1801', async (_what, given, why) => {
    const change = given as { pattern?: string; operation_type?: string };
    const op: Record<string, unknown> = { operation_type: change.operation_type ?? 'backup' };
    if (!('pattern' in change)) op.trigger = { properties: { pattern: 'FREQ=DAILY;BYHOUR=3;BYMINUTE=0' } };
    else if (change.pattern !== undefined) op.trigger = { properties: { pattern: change.pattern } };
    const body = withOperation(serverA, {});
    body.policy.scheduled_operations = [{ ...op, operation_definition: { max_backups: 5 } } as never];
    const res = await call('POST', `${V1}/policies`, body);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.code).toBe('OpenVBS.1801');
    expect(res.body.error.message).toContain(why);
  });

  it.each([
    ['no retention', {}],
    ['max_backups 0 alone (not set)', { max_backups: 0 }],
    ['max_backups 100000', { max_backups: 100000 }],
    ['retention_duration_days "0.5"', { retention_duration_days: 0.5 }],
    ['week_backups 101', { week_backups: 101, timezone: 'UTC' }],
    ['generations without a timezone', { day_backups: 3 }],
    ['timezone Mars/Olympus', { day_backups: 3, timezone: 'Mars/Olympus' }],
    ['timezone 15 hours', { day_backups: 3, timezone: 15 }],
  ])('refuses an operation_definition with %s (OpenVBS.1801)', async (_what, definition) => {
    const res = await call('POST', `${V1}/policies`, withOperation(serverA, {}, definition));
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.code).toBe('OpenVBS.1801');
  });

  it('refuses a bad name, provider, resource type or empty operations (OpenVBS.1801), wrong types (VolumeBackup.0002), an unknown server (404)', async () => {
    const base = fixtureBody(serverA);
    const bad = async (policy: Record<string, unknown>) => (await call('POST', `${V1}/policies`, { policy: { ...base.policy, resources: [], ...policy } })).body.error.code;
    expect(await bad({ name: 'a b' })).toBe('OpenVBS.1801');
    expect(await bad({ name: undefined })).toBe('OpenVBS.1801');
    expect(await bad({ provider_id: 'another' })).toBe('OpenVBS.1801');
    expect(await bad({ scheduled_operations: [] })).toBe('OpenVBS.1801');
    expect(await bad({ resources: [{ id: serverA, type: 'OS::Cinder::Volume', name: 'x' }] })).toBe('OpenVBS.1801');
    expect(await bad({ scheduled_operations: [{ ...base.policy.scheduled_operations[0], operation_definition: { max_backups: 'many' } }] })).toBe('VolumeBackup.0002');
    expect(await bad({ tags: Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: 'v' })) })).toBe('OpenVBS.1004');
    const unknown = await call('POST', `${V1}/policies`, { policy: { ...base.policy, resources: [{ id: 'no-such-server', type: SERVER, name: 'x' }] } });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'OpenVBS.0404']);
  });

  it('holds a server in at most one policy: another policy naming it is refused (OpenVBS.1804) until it leaves the first', async () => {
    const other = fixtureBody(serverA, 'second-policy');
    const refused = await call('POST', `${V1}/policies`, other);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('OpenVBS.1804');
    // Nothing of the refused policy stays.
    expect((await call('GET', `${V1}/policies?name=second-policy`)).body.policies).toEqual([]);

    const second = await call('POST', `${V1}/policies`, { policy: { ...other.policy, resources: [] } });
    expect(second.status).toBe(200);
    const secondId = second.body.policy.id;
    expect((await call('PUT', `${V1}/policies/${secondId}`, { policy: { resources: [{ id: serverA, type: SERVER }] } })).body.error.code).toBe('OpenVBS.1804');
    // Out of the first policy, then into the second.
    expect((await call('PUT', `${V1}/policies/${policyId}`, { policy: { resources: [] } })).body.policy.resources).toEqual([]);
    const moved = await call('PUT', `${V1}/policies/${secondId}`, { policy: { resources: [{ id: serverA, type: SERVER, name: 'ignored' }] } });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.policy.resources).toEqual([{ id: serverA, type: SERVER, name: 'app-a' }]);
    // Back to the first policy for the tests below.
    await call('PUT', `${V1}/policies/${secondId}`, { policy: { resources: [] } });
    expect((await call('PUT', `${V1}/policies/${policyId}`, { policy: { resources: [{ id: serverA, type: SERVER }] } })).status).toBe(200);
    expect((await call('DELETE', `${V1}/policies/${secondId}`)).status).toBe(200);
  });

  it('updates operations by id (disabled: status disabled), suspends and resumes the policy, refuses an unknown operation id', async () => {
    const shown = (await call('GET', `${V1}/policies/${policyId}`)).body.policy;
    const opId = shown.scheduled_operations[0].id;
    const off = await call('PUT', `${V1}/policies/${policyId}`, { policy: { name: 'c2c-policy-update', scheduled_operations: [{ id: opId, enabled: false, trigger: { properties: { pattern: '' } }, operation_definition: { retention_duration_days: '-1' } }] } });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect(off.body.policy).toMatchObject({ name: 'c2c-policy-update', status: 'disabled' });
    expect(off.body.policy.scheduled_operations[0]).toMatchObject({ id: opId, enabled: false, trigger: { properties: { pattern: VCALENDAR } }, operation_definition: { max_backups: 20, retention_duration_days: -1 } });

    const on = await call('PUT', `${V1}/policies/${policyId}`, { policy: { scheduled_operations: [{ id: opId, enabled: true }], tags: [{ key: 'team', value: 'storage' }] } });
    expect(on.body.policy).toMatchObject({ status: 'enabled', tags: [{ key: 'team', value: 'storage' }] });
    expect((await call('PUT', `${V1}/policies/${policyId}`, { policy: { status: 'suspended' } })).body.policy.status).toBe('suspended');
    expect((await call('GET', `${V1}/policies?status=suspended`)).body.policies.map((x: { id: string }) => x.id)).toEqual([policyId]);
    expect((await call('PUT', `${V1}/policies/${policyId}`, { policy: { status: 'enabled' } })).body.policy.status).toBe('enabled');
    expect((await call('PUT', `${V1}/policies/${policyId}`, { policy: { scheduled_operations: [{ id: 'nope', enabled: true }] } })).body.error.code).toBe('OpenVBS.1801');
    expect((await call('PUT', `${V1}/policies/nope`, { policy: { name: 'x' } })).status).toBe(404);
  });

  it('lists newest first with paging (limit, marker, policies_links), sorts by name, filters by name', async () => {
    const ids = [];
    for (const name of ['page-b', 'page-a', 'page-c']) {
      ids.push((await call('POST', `${V1}/policies`, { policy: { ...fixtureBody(serverA, name).policy, resources: [] } })).body.policy.id);
      await new Promise((r) => setTimeout(r, 3)); // each created in its own millisecond: the order is theirs
    }
    const all = (await call('GET', `${V1}/policies`)).body.policies.map((x: { id: string }) => x.id);
    expect(all.slice(0, 3)).toEqual([...ids].reverse());
    const first = await call('GET', `${V1}/policies?limit=2`);
    expect(first.body.policies.map((x: { id: string }) => x.id)).toEqual(all.slice(0, 2));
    const next = new URL(first.body.policies_links[0].href);
    expect(next.searchParams.get('marker')).toBe(all[1]);
    const second = await call('GET', `${next.pathname}${next.search}`);
    expect(second.body.policies.map((x: { id: string }) => x.id)).toEqual(all.slice(2, 4));
    const byName = (await call('GET', `${V1}/policies?sort=name:asc`)).body.policies.map((x: { name: string }) => x.name);
    expect(byName).toEqual([...byName].sort());
    expect((await call('GET', `${V1}/policies?name=page-a`)).body.policies.map((x: { id: string }) => x.id)).toEqual([ids[1]]);
    expect((await call('GET', `${V1}/policies?marker=nope`)).status).toBe(404);
    for (const id of ids) await call('DELETE', `${V1}/policies/${id}`);
  });

  it('executes now: a server backup of each server (autobk_, the policy’s tags, auto_trigger), AutoBackup.0225 while it runs', async () => {
    const serverB = await newServer('app-b');
    expect((await call('PUT', `${V1}/policies/${policyId}`, { policy: { resources: [{ id: serverA, type: SERVER }, { id: serverB, type: SERVER }] } })).status).toBe(200);
    const path = `${V1}/providers/${CSBS_PROVIDER_ID}/checkpoints`;
    expect((await call('POST', `/v1/${p}/providers/another/checkpoints`, { checkpoint: { plan_id: policyId } })).status).toBe(404);
    expect((await call('POST', path, { checkpoint: { plan_id: 'no-such-policy' } })).status).toBe(404);
    expect((await call('POST', path, { checkpoint: { plan_id: policyId, parameters: { resources: ['not-in-it'] } } })).body.error.code).toBe('OpenVBS.1801');

    const before = api.env.workflows.calls.length;
    const res = await call('POST', path, { checkpoint: { plan_id: policyId, parameters: { auto_trigger: false } } }, api.userToken);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const started = api.env.workflows.calls.slice(before);
    expect(started.map((c) => c.workflow)).toEqual(['server-backup', 'server-backup']);
    const cp = res.body.checkpoint;
    expect(cp.protection_plan).toEqual({
      id: policyId,
      name: 'c2c-policy-update',
      resources: [serverA, serverB].sort().map((id) => ({ id, type: SERVER, name: id === serverA ? 'app-a' : 'app-b', extra_info: '{}' })),
    });
    expect(cp.extra_info['os-openvbs:checkpoints']).toHaveLength(2);
    expect(cp.id).toBe(cp.extra_info['os-openvbs:checkpoints'][0].id);
    for (const { id } of cp.extra_info['os-openvbs:checkpoints']) {
      const record = (await api.env.stores.checkpoints.get(p, id))!;
      expect(record.name).toMatch(/^autobk_\d{12}$/);
      expect(record).toMatchObject({ autoTrigger: true, policyId, tags: [{ key: 'team', value: 'storage' }], status: 'protecting' });
    }
    const again = await call('POST', path, { checkpoint: { plan_id: policyId } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('AutoBackup.0225');
  });

  it('deletes a policy (200); its servers are free for another policy', async () => {
    expect((await call('DELETE', `${V1}/policies/${policyId}`)).status).toBe(200);
    expect((await call('GET', `${V1}/policies/${policyId}`)).status).toBe(404);
    expect((await call('DELETE', `${V1}/policies/${policyId}`)).body.error.code).toBe('OpenVBS.0404');
    expect((await call('POST', `${V1}/policies`, fixtureBody(serverA, 'after-delete'))).status).toBe(200);
  });
});

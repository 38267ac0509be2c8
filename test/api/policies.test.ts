// VBS backup policies through the REST API app: shapes as the reference and the public SDK fixtures give them,
// validation with its codes, association rules, execute-now, tasks, tags. Real stores (SQLite in memory); the
// workflows are only recorded (their runs are tested in test/integration/policies-time-travel.test.ts).
import { describe, expect, it } from 'vitest';
import { VBS_TIME_PATTERN } from '../../lib/api/schemas.ts';
import { projectId } from '../service/service-env.ts';
import { useApiProject } from '../support/api-project.ts';

const p = projectId();
const api = useApiProject(p);
const call = api.call;

const V2 = `/v2/${p}`;
const valid = {
  backup_policy_name: 'Test_Policy',
  scheduled_policy: { frequency: 1, remain_first_backup_of_curMonth: 'Y', rentention_num: 10, start_time: '12:00', status: 'ON' },
  tags: [{ key: 'key', value: 'value' }],
};

async function newVolume(name: string) {
  return (await api.env.services.volumes.create(p, { name, sizeBytes: 1024 * 1024 })).volumeId;
}

describe('VBS backup policies API', () => {
  let policyId: string;

  it('creates a policy (the SDK fixture body) and lists it in the fixture’s shape', async () => {
    const created = await call('POST', `${V2}/backuppolicy`, valid);
    expect(created.status).toBe(200);
    policyId = created.body.backup_policy_id;
    expect(policyId).toMatch(/^[0-9a-f-]{36}$/);
    const list = await call('GET', `${V2}/backuppolicy`);
    expect(list.status).toBe(200);
    expect(list.body.backup_policies).toEqual([
      {
        backup_policy_id: policyId,
        backup_policy_name: 'Test_Policy',
        scheduled_policy: { frequency: 1, remain_first_backup_of_curMonth: 'Y', rentention_num: 10, start_time: '12:00', status: 'ON' },
        policy_resource_count: 0,
        tags: [{ key: 'key', value: 'value' }],
      },
    ]);
  });

  it('accepts both members of each pair (kept as given), comma start times, a boolean remain flag, numbers as strings and UTC+08:00', async () => {
    const res = await call('POST', `${V2}/backuppolicy`, {
      backup_policy_name: 'both-pairs',
      scheduled_policy: { start_time: '14:00,02:00', frequency: '3', week_frequency: ['THU', 'MON'], rentention_num: 5, rentention_day: 30, remain_first_backup_of_curMonth: false },
      time_zone: 'UTC+08:00',
    });
    expect(res.status).toBe(200);
    expect(res.body.scheduled_policy).toEqual({ start_time: '02:00,14:00', frequency: 3, week_frequency: ['MON', 'THU'], rentention_num: 5, rentention_day: 30, remain_first_backup_of_curMonth: 'N', status: 'ON' });
    expect(res.body.time_zone).toBe('UTC+08:00');
    expect((await call('DELETE', `${V2}/backuppolicy/${res.body.backup_policy_id}`)).status).toBe(204);
  });

  it.each([
    ['a name starting with default', { ...valid, backup_policy_name: 'default_x' }],
    ['a name with spaces', { ...valid, backup_policy_name: 'a b' }],
    ['no start_time', { ...valid, scheduled_policy: { ...valid.scheduled_policy, start_time: undefined } }],
    ['start_time 24:00', { ...valid, scheduled_policy: { ...valid.scheduled_policy, start_time: '24:00' } }],
    ['a start time twice', { ...valid, scheduled_policy: { ...valid.scheduled_policy, start_time: '01:00,01:00' } }],
    ['frequency 0', { ...valid, scheduled_policy: { ...valid.scheduled_policy, frequency: 0 } }],
    ['frequency 31', { ...valid, scheduled_policy: { ...valid.scheduled_policy, frequency: 31 } }],
    ['no frequency nor week_frequency', { ...valid, scheduled_policy: { ...valid.scheduled_policy, frequency: undefined } }],
    ['week_frequency FUN', { ...valid, scheduled_policy: { ...valid.scheduled_policy, frequency: undefined, week_frequency: ['FUN'] } }],
    ['rentention_num 1', { ...valid, scheduled_policy: { ...valid.scheduled_policy, rentention_num: 1 } }],
    ['rentention_num 100000', { ...valid, scheduled_policy: { ...valid.scheduled_policy, rentention_num: 100000 } }],
    ['no retention', { ...valid, scheduled_policy: { ...valid.scheduled_policy, rentention_num: undefined } }],
    ['time_zone UTC+15:00', { ...valid, time_zone: 'UTC+15:00' }],
    ['time_zone Mars/Olympus', { ...valid, time_zone: 'Mars/Olympus' }],
  ])('refuses %s with OpenVBS.1801', async (_what, body) => {
    const res = await call('POST', `${V2}/backuppolicy`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('OpenVBS.1801');
  });

  it('refuses a wrong type in the body with VolumeBackup.0002, and too many tags with OpenVBS.1004', async () => {
    expect((await call('POST', `${V2}/backuppolicy`, { ...valid, scheduled_policy: { ...valid.scheduled_policy, status: 'MAYBE' } })).body.error.code).toBe('VolumeBackup.0002');
    const tags = Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    expect((await call('POST', `${V2}/backuppolicy`, { ...valid, tags })).body.error.code).toBe('OpenVBS.1004');
  });

  it('updates, disables and enables through scheduled_policy.status; unknown policies answer 404', async () => {
    const off = await call('PUT', `${V2}/backuppolicy/${policyId}`, { scheduled_policy: { status: 'OFF' } });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ backup_policy_id: policyId, scheduled_policy: { status: 'OFF', start_time: '12:00', rentention_num: 10 } });
    const renamed = await call('PUT', `${V2}/backuppolicy/${policyId}`, { backup_policy_name: 'Test_02', scheduled_policy: { start_time: '10:00', status: 'ON' } });
    expect(renamed.body).toMatchObject({ backup_policy_name: 'Test_02', scheduled_policy: { status: 'ON', start_time: '10:00' } });
    expect((await call('PUT', `${V2}/backuppolicy/nope`, { backup_policy_name: 'x' })).status).toBe(404);
    expect((await call('DELETE', `${V2}/backuppolicy/nope`)).body.error.code).toBe('OpenVBS.0404');
  });

  it('associates volumes (moving one from another policy, refusing error and unknown volumes) and disassociates them', async () => {
    const [a, b, broken] = [await newVolume('pa'), await newVolume('pb'), await newVolume('pbroken')];
    await api.env.stores.volumes.lock(p, broken, 'job-broken', 'backing-up', ['available']);
    await api.env.stores.volumes.release(p, broken, 'job-broken', 'error', 'disk failed');
    const other = (await call('POST', `${V2}/backuppolicy`, { ...valid, backup_policy_name: 'other' })).body.backup_policy_id;
    expect((await call('POST', `${V2}/backuppolicyresources`, { backup_policy_id: other, resources: [{ resource_id: a, resource_type: 'volume' }] })).status).toBe(200);

    const res = await call('POST', `${V2}/backuppolicyresources`, {
      backup_policy_id: policyId,
      resources: [
        { resource_id: a, resource_type: 'volume' },
        { resource_id: b, resource_type: 'volume' },
        { resource_id: broken, resource_type: 'volume' },
        { resource_id: 'missing-volume', resource_type: 'volume' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.success_resources.map((r: { resource_id: string }) => r.resource_id)).toEqual([a, b]);
    expect(res.body.success_resources[0]).toMatchObject({ resource_type: 'volume', availability_zone: 'test-az' });
    expect(res.body.fail_resources).toEqual([
      { resource_id: broken, resource_type: 'volume', error_code: 'VolumeBackup.0202', error_msg: expect.any(String) },
      { resource_id: 'missing-volume', resource_type: 'volume', error_code: 'OpenVBS.0404', error_msg: expect.any(String) },
    ]);
    const counts = Object.fromEntries((await call('GET', `${V2}/backuppolicy`)).body.backup_policies.map((x: { backup_policy_id: string; policy_resource_count: number }) => [x.backup_policy_id, x.policy_resource_count]));
    expect(counts).toMatchObject({ [policyId]: 2, [other]: 0 });

    const gone = await call('POST', `${V2}/backuppolicyresources/${other}/deleted_resources`, { resources: [{ resource_id: a }] });
    expect(gone.body.success_resources).toEqual([]);
    expect(gone.body.fail_resources[0]).toMatchObject({ resource_id: a, error_code: 'OpenVBS.1803' });
    const left = await call('POST', `${V2}/backuppolicyresources/${policyId}/deleted_resources`, { resources: [{ resource_id: b }] });
    expect(left.body).toEqual({ success_resources: [{ resource_id: b, resource_type: 'volume' }], fail_resources: [] });
    expect((await call('POST', `${V2}/backuppolicyresources`, { backup_policy_id: 'nope', resources: [{ resource_id: a, resource_type: 'volume' }] })).status).toBe(404);
  });

  it('executes now (204, autobk_ backups with the policy tags), refuses a second run while the first is open (AutoBackup.0225), and lists the tasks', async () => {
    const before = api.env.workflows.calls.length;
    const run = await call('POST', `${V2}/backuppolicy/${policyId}/action`);
    expect(run.status).toBe(204);
    const started = api.env.workflows.calls.slice(before);
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ workflow: 'volume-backup', input: { tags: [{ key: 'key', value: 'value' }] } });
    expect((started[0]!.input as { name: string }).name).toMatch(/^autobk_\d{12}$/);

    const again = await call('POST', `${V2}/backuppolicy/${policyId}/action`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('AutoBackup.0225');

    const tasks = await call('GET', `${V2}/backuppolicy/${policyId}/backuptasks?sort_dir=asc&limit=10`);
    expect(tasks.status).toBe(200);
    expect(tasks.body.count).toBe(1);
    const [task] = tasks.body.tasks;
    expect(task).toMatchObject({ status: 'RUNNING', resource_type: 'volume', finished_at: null, vbs_job_id: (started[0]!.input as { jobId: string }).jobId });
    expect(task.created_at).toMatch(VBS_TIME_PATTERN);
    expect(task.backup_name).toMatch(/^autobk_/);
    expect((await call('GET', `${V2}/backuppolicy/${policyId}/backuptasks?status=EXECUTE_SUCCESS`)).body).toEqual({ count: 0, tasks: [] });
    expect((await call('GET', `${V2}/backuppolicy/${policyId}/backuptasks?status=BOGUS`)).body.error.code).toBe('OpenVBS.0400');

    // The job ends: the next look settles the task, and a new run may start.
    await api.env.stores.jobs.update(p, task.vbs_job_id, { status: 'SUCCESS', endTime: new Date().toISOString() });
    const done = await call('GET', `${V2}/backuppolicy/${policyId}/backuptasks`);
    expect(done.body.tasks[0]).toMatchObject({ status: 'EXECUTE_SUCCESS' });
    expect(done.body.tasks[0].finished_at).toMatch(VBS_TIME_PATTERN);
    expect((await call('POST', `${V2}/backuppolicy/${policyId}/action`)).status).toBe(204);
  });

  it('still refuses user backups named auto…', async () => {
    const v = await newVolume('manual');
    const res = await call('POST', `${V2}/cloudbackups`, { backup: { volume_id: v, name: 'autobk_mine' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VolumeBackup.0005');
  });

  it('manages policy tags: add, batch, remove, list, the project’s tags, filter and count', async () => {
    expect((await call('POST', `${V2}/backuppolicy/${policyId}/tags`, { tag: { key: 'env', value: 'prod' } })).status).toBe(204);
    expect((await call('POST', `${V2}/backuppolicy/${policyId}/tags/action`, { action: 'create', tags: [{ key: 'tier', value: 'gold' }, { key: 'env', value: 'stage' }] })).status).toBe(204);
    expect((await call('GET', `${V2}/backuppolicy/${policyId}/tags`)).body).toEqual({ tags: [{ key: 'key', value: 'value' }, { key: 'env', value: 'stage' }, { key: 'tier', value: 'gold' }] });
    expect((await call('DELETE', `${V2}/backuppolicy/${policyId}/tags/key`)).status).toBe(204);
    expect((await call('DELETE', `${V2}/backuppolicy/${policyId}/tags/key`)).status).toBe(404);
    expect((await call('POST', `${V2}/backuppolicy/${policyId}/tags/action`, { action: 'delete', tags: [{ key: 'tier' }] })).status).toBe(204);
    expect((await call('GET', `${V2}/backuppolicy/${policyId}/tags`)).body).toEqual({ tags: [{ key: 'env', value: 'stage' }] });

    const all = await call('GET', `${V2}/backuppolicy/tags`);
    expect(all.body.tags).toEqual([
      { key: 'env', values: ['stage'] },
      { key: 'key', values: ['value'] },
    ]);
    const filtered = await call('POST', `${V2}/backuppolicy/resource_instances/action`, { action: 'filter', tags: [{ key: 'env', values: ['stage'] }], limit: '10', offset: '0' });
    expect(filtered.body).toEqual({ total_count: 1, resources: [{ resource_id: policyId, resource_name: 'Test_02', resource_detail: null, tags: [{ key: 'env', value: 'stage' }] }] });
    const counted = await call('POST', `${V2}/backuppolicy/resource_instances/action`, { action: 'count', not_tags: [{ key: 'env', values: [] }] });
    expect(counted.body).toEqual({ total_count: 1 });
  });

  it('lets user tokens manage policies; the tick needs an admin token and runs due slots at the time given', async () => {
    expect((await call('GET', `${V2}/backuppolicy`, undefined, api.userToken)).status).toBe(200);
    expect((await call('POST', `/v1/${p}/policy-tick`, {}, api.userToken)).status).toBe(403);
    const tick = await call('POST', `/v1/${p}/policy-tick`, { at: '2020-01-01T00:00:00Z' });
    expect(tick.status).toBe(200);
    expect(tick.body).toMatchObject({ at: '2020-01-01T00:00:00.000000', runs: [], missed: [] });
    expect((await call('POST', `/v1/${p}/policy-tick`, { at: 'yesterday' })).status).toBe(400);
  });

  it('deletes a policy with 204', async () => {
    expect((await call('DELETE', `${V2}/backuppolicy/${policyId}`)).status).toBe(204);
    expect((await call('GET', `${V2}/backuppolicy/${policyId}/tags`)).status).toBe(404);
  });
});

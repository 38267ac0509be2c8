// The execution-failed handler as the stack's EventBridge rule invokes it: an execution of one of the stack's
// state machines ended FAILED, TIMED_OUT or ABORTED where no Catch saw it. Run in-process on the embedded
// backend with the state machine ARNs in the environment, as the stack gives them to the function.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../lib/catalog/jobs.ts';
import type { VolumeBlocks } from '../../lib/engine/ports.ts';
import { installProcessRuntime } from '../../lib/wiring/runtime.ts';
import { WORKFLOWS, WORKFLOW_NAMES } from '../../lib/workflows/registry.ts';
import type { WorkflowName } from '../../lib/workflows/registry.ts';
import { backupPrepare } from '../../lib/workflows/steps/volume-backup.ts';
import { handler, workflowOfStateMachine } from '../../functions/execution-failed.ts';
import { createRuntimeEnv } from '../support/runtime-env.ts';
import type { RuntimeEnv } from '../support/runtime-env.ts';

const SIZE = 8 * 1024 * 1024;
const now = () => new Date().toISOString();
const machineArn = (workflow: WorkflowName) => `arn:aws:states:eu-west-1:111122223333:stateMachine:OpenVbs-${WORKFLOWS[workflow].id}`;

/** Describes volumes only: the failure path reads no data. */
const volumes: VolumeBlocks = {
  describe: async (_projectId, volumeId) => ({ volumeId, sizeBytes: SIZE }),
  openReader: () => Promise.reject(new Error('not read here')),
  openWriter: () => Promise.reject(new Error('not written here')),
};

/** "Step Functions Execution Status Change" as EventBridge delivers it. */
function statusChange(workflow: WorkflowName, jobId: string, input: unknown, detail: { status: string; error?: string | null; cause?: string | null }) {
  return {
    version: '0',
    id: `evt-${jobId}`,
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    account: '111122223333',
    time: now(),
    region: 'eu-west-1',
    resources: [`arn:aws:states:eu-west-1:111122223333:execution:OpenVbs-${WORKFLOWS[workflow].id}:${jobId}`],
    detail: {
      executionArn: `arn:aws:states:eu-west-1:111122223333:execution:OpenVbs-${WORKFLOWS[workflow].id}:${jobId}`,
      stateMachineArn: machineArn(workflow),
      name: jobId,
      startDate: Date.now() - 60_000,
      stopDate: Date.now(),
      input: JSON.stringify(input),
      output: null,
      error: null,
      cause: null,
      ...detail,
    },
  };
}

describe('execution-failed handler (embedded backend)', () => {
  let env: RuntimeEnv;
  const saved: Record<string, string | undefined> = {};
  const p = `ef${Date.now().toString(36)}`;

  beforeAll(async () => {
    env = await createRuntimeEnv('embedded', { volumes });
    installProcessRuntime(env.runtime);
    for (const workflow of WORKFLOW_NAMES) {
      saved[WORKFLOWS[workflow].arnEnv] = process.env[WORKFLOWS[workflow].arnEnv];
      process.env[WORKFLOWS[workflow].arnEnv] = machineArn(workflow);
    }
  });
  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    installProcessRuntime(undefined);
    await env.close();
  });

  /** The failure notifications of a job in the embedded backend's outbox. */
  async function notificationsOf(jobId: string): Promise<Array<{ subject: string; status: string }>> {
    const text = await readFile(env.path('home/notifications.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.includes(`"${jobId}"`))
      .map((line) => JSON.parse(line) as { subject: string; status: string });
  }

  /** A backup as far as its execution got: the volume locked, the backup `creating`, the job RUNNING. */
  async function runningBackup(suffix: string) {
    const { stores } = env;
    const volumeId = `v-${suffix}`;
    const jobId = `j-${suffix}`;
    const backupId = `b-${suffix}`;
    await stores.volumes.create({ projectId: p, volumeId, name: volumeId, sizeBytes: SIZE, path: env.path(`${volumeId}.img`), managed: false, status: 'available', createdAt: now(), updatedAt: now() });
    await stores.volumes.lock(p, volumeId, jobId, 'backing-up', ['available']);
    const job: JobRecord = { projectId: p, jobId, jobType: 'bksCreateBackup', status: 'INIT', entities: { backup_id: backupId, volume_id: volumeId }, bytesDone: 0, bytesTotal: 0, createdAt: now() };
    await stores.jobs.create(job);
    const input = { projectId: p, jobId, backupId, volumeId, name: `backup ${suffix}` };
    await backupPrepare(env.runtime.taskDeps(), input);
    return { volumeId, jobId, backupId, input };
  }

  it('ends a RUNNING backup FAIL with the reason Step Functions gives, marks the backup error and releases the volume', async () => {
    const { volumeId, jobId, backupId, input } = await runningBackup('limit');
    expect((await env.stores.jobs.get(p, jobId))!.status).toBe('RUNNING');
    expect((await env.stores.volumes.get(p, volumeId))!.lockJobId).toBe(jobId);
    const backup = (await env.stores.backups.getBackup(p, backupId))!;
    expect(backup.status).toBe('creating');

    const cause = 'The execution reached the maximum number of history events (25000).';
    const result = await handler(statusChange('volume-backup', jobId, input, { status: 'FAILED', error: 'States.Runtime', cause }));

    expect(result).toEqual({ outcome: 'failed', notified: true });
    const job = (await env.stores.jobs.get(p, jobId))!;
    expect(job).toMatchObject({ status: 'FAIL', failReason: cause, errorCode: 'States.Runtime' });
    expect((await env.stores.backups.getBackup(p, backupId))!).toMatchObject({ status: 'error', failReason: cause });
    const volume = (await env.stores.volumes.get(p, volumeId))!;
    expect(volume.status).toBe('available');
    expect(volume.lockJobId).toBeUndefined();
    expect(await notificationsOf(jobId)).toEqual([expect.objectContaining({ status: 'failure', subject: `OpenVBS: Backup of volume ${volumeId} failed` })]);
  });

  it('gives a timed-out execution a reason of its own and leaves an ended job alone', async () => {
    const { volumeId, jobId, input } = await runningBackup('timeout');
    const event = statusChange('volume-backup', jobId, input, { status: 'TIMED_OUT' });
    expect(await handler(event)).toEqual({ outcome: 'failed', notified: true });
    const job = (await env.stores.jobs.get(p, jobId))!;
    expect(job.status).toBe('FAIL');
    expect(job.failReason).toBe('the volume-backup execution ran longer than its timeout of 48 h');
    expect((await env.stores.volumes.get(p, volumeId))!.lockJobId).toBeUndefined();

    // The same execution again (EventBridge delivers at least once), or one whose own failure path ran and then
    // ended in its Fail state: the job keeps its reason, and nobody is told twice.
    expect(await handler(event)).toEqual({ outcome: 'ended', notified: false });
    expect(await handler(statusChange('volume-backup', jobId, input, { status: 'FAILED', error: 'OpenVBS.JobFailed', cause: 'The job failed; its fail_reason says why.' }))).toEqual({
      outcome: 'ended',
      notified: false,
    });
    expect((await env.stores.jobs.get(p, jobId))!.failReason).toBe('the volume-backup execution ran longer than its timeout of 48 h');
    expect(await notificationsOf(jobId)).toHaveLength(1);
  });

  it('takes a stopped execution\'s cause as the reason', async () => {
    const { volumeId, jobId, input } = await runningBackup('stopped');
    await handler(statusChange('volume-backup', jobId, input, { status: 'ABORTED', error: 'OpenVBS.Cancelled', cause: 'cancelled' }));
    expect((await env.stores.jobs.get(p, jobId))!).toMatchObject({ status: 'FAIL', failReason: 'cancelled' });
    expect((await env.stores.volumes.get(p, volumeId))!.lockJobId).toBeUndefined();
  });

  it('ends a delete job through delete-fail', async () => {
    const jobId = 'j-delete';
    await env.stores.jobs.create({ projectId: p, jobId, jobType: 'bksDeleteBackup', status: 'RUNNING', entities: { backup_id: 'b-gone' }, bytesDone: 0, bytesTotal: 0, createdAt: now() });
    const result = await handler(statusChange('backup-delete', jobId, { projectId: p, jobId, backupId: 'b-gone' }, { status: 'ABORTED' }));
    expect(result.outcome).toBe('failed');
    expect((await env.stores.jobs.get(p, jobId))!).toMatchObject({ status: 'FAIL', failReason: 'the backup-delete execution was stopped' });
  });

  it('does nothing for a job that does not exist', async () => {
    const input = { projectId: p, jobId: 'j-never', backupId: 'b-never', volumeId: 'v-never' };
    expect(await handler(statusChange('volume-restore', 'j-never', input, { status: 'FAILED' }))).toEqual({ outcome: 'no-job', notified: false });
  });

  it('refuses what is not one of the stack\'s executions, so Lambda keeps it in the dead-letter queue', async () => {
    const input = { projectId: p, jobId: 'j-x', backupId: 'b-x', volumeId: 'v-x' };
    const foreign = statusChange('volume-backup', 'j-x', input, { status: 'FAILED' });
    foreign.detail.stateMachineArn = 'arn:aws:states:eu-west-1:111122223333:stateMachine:SomeoneElse';
    await expect(handler(foreign)).rejects.toThrow(/none of this stack's state machines/);
    await expect(handler(statusChange('volume-backup', 'j-x', input, { status: 'SUCCEEDED' }))).rejects.toThrow(/not an execution status change/);
    await expect(handler({ ...statusChange('volume-backup', 'j-x', { projectId: p }, { status: 'FAILED' }) })).rejects.toThrow();
  });

  it('finds each workflow by the state machine ARN in its variable', () => {
    for (const workflow of WORKFLOW_NAMES) expect(workflowOfStateMachine(machineArn(workflow))).toBe(workflow);
    expect(workflowOfStateMachine(machineArn('volume-backup'), {})).toBeUndefined();
  });
});

// The three state machines as docs/service-contract.md describes them, read back from the synthesized
// DefinitionString (an Fn::Join; intrinsics become placeholder strings).
import { MAX_VOLUME_GB } from '../../lib/service/sizes.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionLogicalId } from '../../infra/handlers.ts';
import { WORKFLOWS, WORKFLOW_NAMES, stateMachineLogicalId } from '../../lib/workflows/registry.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { LOCAL_FUNCTION_ARN_PREFIX, synthesizeTemplate, workflowDefinitions } from '../../infra/synth.ts';
import type { CfnTemplate } from '../../infra/synth.ts';
import { DEFAULT_MAX_CONCURRENCY } from '../../infra/constructs/workflows.ts';
import { RETRYABLE_ERRORS } from '../../lib/workflows/errors.ts';
import type { Asl, AslState } from './helpers.ts';
import { definitionOf, tasksOf, template } from './helpers.ts';

let tpl: CfnTemplate;
let backup: Asl;
let restore: Asl;
let del: Asl;

beforeAll(() => {
  tpl = template();
  backup = definitionOf(tpl, 'VolumeBackupStateMachine');
  restore = definitionOf(tpl, 'VolumeRestoreStateMachine');
  del = definitionOf(tpl, 'BackupDeleteStateMachine');
});

const fnArn = (name: HandlerName) => `<${functionLogicalId(name)}.Arn>`;
const state = (asl: Asl, name: string): AslState => {
  const s = asl.States[name];
  if (!s) throw new Error(`no state ${name}`);
  return s;
};

function expectFailurePath(asl: Asl, fail: HandlerName, event: string) {
  expect(state(asl, 'MarkFailed')).toMatchObject({ Type: 'Task', Resource: fnArn(fail), ResultPath: null, Next: 'NotifyFailure' });
  expect(state(asl, 'MarkFailed').Catch).toBeUndefined();
  expect(state(asl, 'NotifyFailure')).toMatchObject({
    Type: 'Task',
    Resource: fnArn('notify'),
    Next: 'Failed',
    ResultPath: null,
    Parameters: { 'projectId.$': '$.projectId', 'jobId.$': '$.jobId', event, status: 'failure' },
  });
  expect(state(asl, 'NotifyFailure').Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.notifyError', Next: 'Failed' }]);
  expect(state(asl, 'Failed').Type).toBe('Fail');
  expect(state(asl, 'NotifySuccess')).toMatchObject({
    Type: 'Task',
    Resource: fnArn('notify'),
    Next: 'Done',
    Parameters: { 'projectId.$': '$.projectId', 'jobId.$': '$.jobId', event, status: 'success' },
  });
  expect(state(asl, 'NotifySuccess').Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.notifyError', Next: 'Done' }]);
  expect(state(asl, 'Done').Type).toBe('Succeed');
}

const catchToMarkFailed = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'MarkFailed' }];

describe.each([
  ['server-backup', 'ServerBackupStateMachine', 'BackupDisks', ['server-backup-prepare', 'server-backup-commit', 'server-backup-fail'], ['backup-prepare', 'backup-segment', 'backup-commit', 'backup-fail'], 'backup'],
  ['server-restore', 'ServerRestoreStateMachine', 'RestoreDisks', ['server-restore-prepare', 'server-restore-commit', 'server-restore-fail'], ['restore-prepare', 'restore-segment', 'restore-commit', 'restore-fail'], 'restore'],
] as const)('%s', (_workflow, logicalId, mapName, [prepare, commit, fail], [diskPrepare, diskSegment, diskCommit, diskFail], event) => {
  const asl = () => definitionOf(tpl, logicalId);

  it('runs Prepare -> disks Map -> Commit -> NotifySuccess -> Done, every step caught into the failure path', () => {
    const a = asl();
    expect(a.StartAt).toBe('Prepare');
    expect(state(a, 'Prepare')).toMatchObject({ Type: 'Task', Resource: fnArn(prepare), ResultPath: '$.work', Next: mapName });
    expect(state(a, mapName)).toMatchObject({ Type: 'Map', Next: 'Commit', ResultPath: null, ItemsPath: '$.work.disks', MaxConcurrency: 4 });
    expect(state(a, 'Commit')).toMatchObject({ Type: 'Task', Resource: fnArn(commit), ResultPath: null, Next: 'NotifySuccess' });
    for (const name of ['Prepare', mapName, 'Commit']) expect(state(a, name).Catch, name).toEqual(catchToMarkFailed);
    expectFailurePath(a, fail, event);
  });

  it("runs each disk through the volume workflow's steps, with the disk's own ids, and ends a failed disk's job before failing the Map", () => {
    const map = state(asl(), mapName);
    expect(map.ItemSelector).toEqual({
      'projectId.$': '$$.Map.Item.Value.projectId',
      'jobId.$': '$$.Map.Item.Value.jobId',
      'backupId.$': '$$.Map.Item.Value.backupId',
      'volumeId.$': '$$.Map.Item.Value.volumeId',
      'name.$': '$$.Map.Item.Value.name',
    });
    const inner = map.ItemProcessor!;
    expect(inner.StartAt).toBe('DiskPrepare');
    expect(inner.States.DiskPrepare).toMatchObject({ Resource: fnArn(diskPrepare), ResultPath: '$.work' });
    const segments = Object.entries(inner.States).find(([, st]) => st.Type === 'Map')![1];
    expect(segments.ItemsPath).toBe('$.work.segments');
    expect(Object.values(segments.ItemProcessor!.States)[0]).toMatchObject({ Resource: fnArn(diskSegment) });
    expect(inner.States.DiskCommit).toMatchObject({ Resource: fnArn(diskCommit), End: true });
    const caught = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'DiskMarkFailed' }];
    for (const st of [inner.States.DiskPrepare!, segments, inner.States.DiskCommit!]) expect(st.Catch).toEqual(caught);
    expect(inner.States.DiskMarkFailed).toMatchObject({ Resource: fnArn(diskFail), Next: 'DiskFailed' });
    expect(inner.States.DiskFailed).toMatchObject({ Type: 'Fail', Error: 'OpenVBS.DiskFailed' });
  });
});

describe.each([
  ['volume-backup', () => backup, 'BackupSegments', ['backup-prepare', 'backup-segment', 'backup-commit', 'backup-fail'], 'backup'],
  ['volume-restore', () => restore, 'RestoreSegments', ['restore-prepare', 'restore-segment', 'restore-commit', 'restore-fail'], 'restore'],
] as const)('%s', (_workflow, asl, mapName, [prepare, segment, commit, fail], event) => {
  it('runs Prepare -> Map -> Commit -> NotifySuccess -> Done', () => {
    const a = asl();
    expect(a.StartAt).toBe('Prepare');
    expect(state(a, 'Prepare')).toMatchObject({ Type: 'Task', Resource: fnArn(prepare), ResultPath: '$.work', Next: mapName });
    expect(state(a, mapName)).toMatchObject({ Type: 'Map', Next: 'Commit', ResultPath: null });
    expect(state(a, 'Commit')).toMatchObject({ Type: 'Task', Resource: fnArn(commit), ResultPath: null, Next: 'NotifySuccess' });
  });

  it('fans out over $.work.segments with the ids and the segment number', () => {
    const map = state(asl(), mapName);
    expect(map.ItemsPath).toBe('$.work.segments');
    expect(map.MaxConcurrency).toBe(4);
    expect(map.ItemSelector).toEqual({
      'projectId.$': '$.projectId',
      'jobId.$': '$.jobId',
      'backupId.$': '$.backupId',
      'volumeId.$': '$.volumeId',
      'segment.$': '$$.Map.Item.Value',
    });
    const processor = map.ItemProcessor!;
    expect(processor.States[processor.StartAt]).toMatchObject({ Type: 'Task', Resource: fnArn(segment), End: true });
  });

  it('catches Prepare, the Map and Commit into MarkFailed with ResultPath $.error', () => {
    const a = asl();
    for (const name of ['Prepare', mapName, 'Commit']) expect(state(a, name).Catch, name).toEqual(catchToMarkFailed);
  });

  it('marks the job failed, notifies and ends Failed; notifications never fail the job', () => {
    expectFailurePath(asl(), fail, event);
  });
});

describe('backup-delete', () => {
  it('runs DeleteBackup -> NotifySuccess -> Done with the failure path through delete-fail', () => {
    expect(del.StartAt).toBe('DeleteBackup');
    expect(state(del, 'DeleteBackup')).toMatchObject({ Type: 'Task', Resource: fnArn('delete-backup'), Next: 'NotifySuccess' });
    expect(state(del, 'DeleteBackup').Catch).toEqual(catchToMarkFailed);
    expectFailurePath(del, 'delete-fail', 'delete');
  });
});

describe('every task', () => {
  it('invokes a function directly (payloadResponseOnly), waits out throttling and retries transient errors: 2 s, x2, 5 attempts', () => {
    for (const asl of [backup, restore, del]) {
      for (const [name, task] of tasksOf(asl)) {
        expect(task.Resource, name).toMatch(/^<Fn[A-Za-z]+\.Arn>$/);
        expect(task.Retry, name).toEqual([
          { ErrorEquals: ['Lambda.TooManyRequestsException'], IntervalSeconds: 5, MaxAttempts: 20, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL' },
          { ErrorEquals: RETRYABLE_ERRORS, IntervalSeconds: 2, MaxAttempts: 5, BackoffRate: 2 },
        ]);
      }
    }
    expect(RETRYABLE_ERRORS).toEqual(['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.Unknown', 'Sandbox.Timedout', 'TransientError']);
  });
});

describe('state machine resources', () => {
  it('are STANDARD, log ALL events with execution data to CloudWatch and trace with X-Ray', () => {
    for (const id of ['VolumeBackupStateMachine', 'VolumeRestoreStateMachine', 'BackupDeleteStateMachine']) {
      expect(tpl.Resources[id]!.Properties).toMatchObject({
        StateMachineType: 'STANDARD',
        LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: expect.anything() } }] },
        TracingConfiguration: { Enabled: true },
      });
    }
  });

  it('time out as the workflow registry says: 48 h for backups and restores, 1 h for deletes', () => {
    for (const workflow of WORKFLOW_NAMES) {
      const definition = definitionOf(tpl, stateMachineLogicalId(workflow)) as Asl & { TimeoutSeconds?: number };
      expect(definition.TimeoutSeconds, workflow).toBe(WORKFLOWS[workflow].timeoutSeconds);
    }
    expect(WORKFLOWS['volume-backup'].timeoutSeconds).toBe(48 * 3600);
    expect(WORKFLOWS['volume-restore'].timeoutSeconds).toBe(48 * 3600);
    expect(WORKFLOWS['backup-delete'].timeoutSeconds).toBe(3600);
  });

  it('leave the largest volume the API accepts time to finish at a fifth of the engine speed per segment task', () => {
    const largest = MAX_VOLUME_GB * 2 ** 30;
    const perTask = 100 * 2 ** 20; // bytes a second; the engine does about 500 MB/s a core
    const seconds = largest / (DEFAULT_MAX_CONCURRENCY * perTask);
    expect(seconds).toBeLessThan(WORKFLOWS['volume-backup'].timeoutSeconds);
    expect(seconds).toBeLessThan(WORKFLOWS['volume-restore'].timeoutSeconds);
  });
});

describe('synthesizeTemplate options and workflowDefinitions', () => {
  it('takes the Map concurrency as an option', () => {
    const other = synthesizeTemplate({ maxConcurrency: 9 });
    expect(state(definitionOf(other, 'VolumeBackupStateMachine'), 'BackupSegments').MaxConcurrency).toBe(9);
    expect(state(definitionOf(other, 'VolumeRestoreStateMachine'), 'RestoreSegments').MaxConcurrency).toBe(9);
  });

  it('rejects a concurrency below 1', () => {
    expect(() => synthesizeTemplate({ maxConcurrency: 0 })).toThrow(/maxConcurrency/);
  });

  it('resolves each task Resource to a placeholder ARN naming its handler', () => {
    const defs = workflowDefinitions(tpl);
    expect(Object.keys(defs).sort()).toEqual(['backup-delete', 'checkpoint-delete', 'server-backup', 'server-restore', 'volume-backup', 'volume-restore']);
    const vb = defs['volume-backup'] as unknown as Asl;
    expect(state(vb, 'Prepare').Resource).toBe(`${LOCAL_FUNCTION_ARN_PREFIX}backup-prepare`);
    expect(state(vb, 'BackupSegments').ItemProcessor!.States.Segment!.Resource).toBe(`${LOCAL_FUNCTION_ARN_PREFIX}backup-segment`);
    expect(state(defs['backup-delete'] as unknown as Asl, 'MarkFailed').Resource).toBe(`${LOCAL_FUNCTION_ARN_PREFIX}delete-fail`);
  });
});

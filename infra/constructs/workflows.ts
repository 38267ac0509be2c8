// The three state machines of docs/service-contract.md. The local runtime executes these very definitions
// (taken from the synthesized template), so they stay within what aws-local-stepfunctions runs: JSONPath only,
// LambdaInvoke with payloadResponseOnly (Resource = the function ARN), Map with ItemProcessor/ItemSelector.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { CfnStateMachine, IChainable, RetryProps } from 'aws-cdk-lib/aws-stepfunctions';
import { DefinitionBody, Fail, JsonPath, LogLevel, Map as MapState, StateMachine, StateMachineType, Succeed, TaskInput } from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { WorkflowName } from '../../lib/workflows/contracts.ts';
import type { HandlerName } from '../handlers.ts';
import { functionLogicalId } from '../handlers.ts';
import { acknowledgeWildcardResource, REASONS } from '../nag.ts';
import type { ServiceFunctions } from './functions.ts';

/** Workflow -> PascalCase id; the state machine's logical id is `<id>StateMachine`. */
export const WORKFLOW_IDS = {
  'volume-backup': 'VolumeBackup',
  'volume-restore': 'VolumeRestore',
  'backup-delete': 'BackupDelete',
} as const satisfies Record<WorkflowName, string>;

export function stateMachineLogicalId(workflow: WorkflowName): string {
  return `${WORKFLOW_IDS[workflow]}StateMachine`;
}

/** Errors worth another attempt: Lambda service hiccups, AWS throttling, and the handlers' own TransientError. */
export const RETRYABLE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'SlowDown',
  'TransientError',
];
const RETRY: RetryProps = { errors: RETRYABLE_ERRORS, interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 5 };

export const DEFAULT_MAX_CONCURRENCY = 4;

export interface WorkflowsProps {
  functions: ServiceFunctions;
  /** Segments of one backup or restore processed at once (the Map's MaxConcurrency). Default 4. */
  maxConcurrency?: number;
  logRetention?: RetentionDays;
}

type NotifyEvent = 'backup' | 'restore' | 'delete';

export class Workflows extends Construct {
  readonly machines: Record<WorkflowName, StateMachine>;

  constructor(scope: Construct, id: string, props: WorkflowsProps) {
    super(scope, id);
    const maxConcurrency = props.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) throw new Error(`OpenVBS: maxConcurrency must be a positive integer, got ${maxConcurrency}`);
    const fns = props.functions;
    // The handlers each workflow invokes, for the IAM5 acknowledgements below.
    const invoked: Record<WorkflowName, Set<HandlerName>> = { 'volume-backup': new Set(), 'volume-restore': new Set(), 'backup-delete': new Set() };
    let current: WorkflowName = 'volume-backup';
    const fn = (name: HandlerName): IFunction => {
      invoked[current].add(name);
      return fns.fn(name);
    };

    const segmented = (workflow: 'volume-backup' | 'volume-restore', event: NotifyEvent, mapName: string, steps: { prepare: HandlerName; segment: HandlerName; commit: HandlerName; fail: HandlerName }) => {
      current = workflow;
      const scope = new Construct(this, WORKFLOW_IDS[workflow]);
      const done = new Succeed(scope, 'Done');
      const failed = new Fail(scope, 'Failed', { error: 'OpenVBS.JobFailed', cause: 'The job failed; its fail_reason says why.' });
      const markFailed = lambdaTask(scope, 'MarkFailed', fn(steps.fail), { resultPath: JsonPath.DISCARD });
      const notifyFailure = notifyTask(scope, 'NotifyFailure', fn('notify'), event, 'failure', failed);
      markFailed.next(notifyFailure);
      notifyFailure.next(failed);

      const prepare = lambdaTask(scope, 'Prepare', fn(steps.prepare), { resultPath: '$.work' });
      const segment = lambdaTask(scope, 'Segment', fn(steps.segment), {});
      const map = new MapState(scope, mapName, {
        itemsPath: '$.work.segments',
        itemSelector: {
          projectId: JsonPath.stringAt('$.projectId'),
          jobId: JsonPath.stringAt('$.jobId'),
          backupId: JsonPath.stringAt('$.backupId'),
          volumeId: JsonPath.stringAt('$.volumeId'),
          segment: JsonPath.stringAt('$$.Map.Item.Value'),
        },
        maxConcurrency,
        resultPath: JsonPath.DISCARD,
      });
      map.itemProcessor(segment);
      const commit = lambdaTask(scope, 'Commit', fn(steps.commit), { resultPath: JsonPath.DISCARD });
      const notifySuccess = notifyTask(scope, 'NotifySuccess', fn('notify'), event, 'success', done);
      for (const step of [prepare, map, commit]) step.addCatch(markFailed, { errors: ['States.ALL'], resultPath: '$.error' });
      return this.machine(workflow, prepare.next(map).next(commit).next(notifySuccess).next(done), props.logRetention);
    };

    const backupDelete = () => {
      current = 'backup-delete';
      const scope = new Construct(this, WORKFLOW_IDS['backup-delete']);
      const done = new Succeed(scope, 'Done');
      const failed = new Fail(scope, 'Failed', { error: 'OpenVBS.JobFailed', cause: 'The job failed; its fail_reason says why.' });
      const markFailed = lambdaTask(scope, 'MarkFailed', fn('delete-fail'), { resultPath: JsonPath.DISCARD });
      const notifyFailure = notifyTask(scope, 'NotifyFailure', fn('notify'), 'delete', 'failure', failed);
      markFailed.next(notifyFailure);
      notifyFailure.next(failed);
      const del = lambdaTask(scope, 'DeleteBackup', fn('delete-backup'), { resultPath: JsonPath.DISCARD });
      del.addCatch(markFailed, { errors: ['States.ALL'], resultPath: '$.error' });
      const notifySuccess = notifyTask(scope, 'NotifySuccess', fn('notify'), 'delete', 'success', done);
      return this.machine('backup-delete', del.next(notifySuccess).next(done), props.logRetention);
    };

    this.machines = {
      'volume-backup': segmented('volume-backup', 'backup', 'BackupSegments', {
        prepare: 'backup-prepare',
        segment: 'backup-segment',
        commit: 'backup-commit',
        fail: 'backup-fail',
      }),
      'volume-restore': segmented('volume-restore', 'restore', 'RestoreSegments', {
        prepare: 'restore-prepare',
        segment: 'restore-segment',
        commit: 'restore-commit',
        fail: 'restore-fail',
      }),
      'backup-delete': backupDelete(),
    };

    // CDK grants lambda:InvokeFunction on `<arn>` and `<arn>:*` (any version or alias) of each invoked function.
    for (const [workflow, machine] of Object.entries(this.machines) as Array<[WorkflowName, StateMachine]>) {
      acknowledgeWildcardResource(machine.role, '*', `${REASONS.xray} The same holds for the CloudWatch Logs delivery actions (CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, ...) that vended state machine logging needs.`);
      for (const name of invoked[workflow]) {
        acknowledgeWildcardResource(machine.role, `<${functionLogicalId(name)}.Arn>:*`, `Step Functions invokes ${name} as its LambdaInvoke task; the ":*" form covers the function's versions and aliases, nothing else.`);
      }
    }
  }

  private machine(workflow: WorkflowName, definition: IChainable, retention: RetentionDays | undefined): StateMachine {
    const id = WORKFLOW_IDS[workflow];
    const logGroup = new LogGroup(this, `${id}Logs`, {
      // The vendedlogs prefix keeps the CloudWatch Logs resource policy small however many machines log.
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-${id}`,
      retention: retention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machine = new StateMachine(this, `${id}StateMachine`, {
      comment: `OpenVBS ${workflow}`,
      definitionBody: DefinitionBody.fromChainable(definition),
      stateMachineType: StateMachineType.STANDARD,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    (machine.node.defaultChild as CfnStateMachine).overrideLogicalId(stateMachineLogicalId(workflow));
    return machine;
  }
}

function lambdaTask(scope: Construct, id: string, fn: IFunction, props: { resultPath?: string; payload?: TaskInput }): LambdaInvoke {
  const task = new LambdaInvoke(scope, id, {
    lambdaFunction: fn,
    payloadResponseOnly: true,
    // Our own Retry below replaces CDK's default one.
    retryOnServiceExceptions: false,
    ...(props.resultPath ? { resultPath: props.resultPath } : {}),
    ...(props.payload ? { payload: props.payload } : {}),
  });
  task.addRetry(RETRY);
  return task;
}

/** A notify task; a lost notification must not fail the job, so it catches into the state that follows it. */
function notifyTask(scope: Construct, id: string, fn: IFunction, event: NotifyEvent, status: 'success' | 'failure', next: IChainable): LambdaInvoke {
  const task = lambdaTask(scope, id, fn, {
    resultPath: JsonPath.DISCARD,
    payload: TaskInput.fromObject({
      projectId: JsonPath.stringAt('$.projectId'),
      jobId: JsonPath.stringAt('$.jobId'),
      event,
      status,
    }),
  });
  task.addCatch(next, { errors: ['States.ALL'], resultPath: '$.notifyError' });
  return task;
}

// The state machines of the workflow registry (lib/workflows/registry.ts). The local runtime executes these very definitions
// (taken from the synthesized template), so they stay within what aws-local-stepfunctions runs: JSONPath only,
// LambdaInvoke with payloadResponseOnly (Resource = the function ARN), Map with ItemProcessor/ItemSelector.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { CfnStateMachine, IChainable, RetryProps } from 'aws-cdk-lib/aws-stepfunctions';
import { DefinitionBody, Fail, JitterType, JsonPath, LogLevel, Map as MapState, StateMachine, StateMachineType, Succeed, TaskInput } from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { WORKFLOWS, WORKFLOW_NAMES, stateMachineLogicalId } from '../../lib/workflows/registry.ts';
import type { NotifyEvent } from '../../lib/notify/notifier.ts';
import type { FanOutWorkflowSpec, HandlerName, SegmentedWorkflowSpec, SingleStepWorkflowSpec, WorkflowName, WorkflowSpec } from '../../lib/workflows/registry.ts';
import { RETRYABLE_ERRORS } from '../../lib/workflows/errors.ts';
import { functionLogicalId } from '../handlers.ts';
import { acknowledgeWildcardResource, REASONS } from '../nag.ts';
import type { ServiceFunctions } from './functions.ts';
import { LOG_GROUP_NAMES } from './storage.ts';

/** Errors worth another attempt: the handlers classify theirs in one place (lib/workflows/errors.ts). */
const RETRY: RetryProps = { errors: [...RETRYABLE_ERRORS], interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 5 };
/**
 * The function is at its reserved concurrency (infra/handlers.ts): a burst of jobs waits for a free slot, up to
 * about 17 minutes, spread by jitter, instead of failing after a minute.
 */
export const THROTTLED_ERROR = 'Lambda.TooManyRequestsException';
const THROTTLED_RETRY: RetryProps = {
  errors: [THROTTLED_ERROR],
  interval: Duration.seconds(5),
  backoffRate: 2,
  maxDelay: Duration.seconds(60),
  jitterStrategy: JitterType.FULL,
  maxAttempts: 20,
};

export const DEFAULT_MAX_CONCURRENCY = 4;
/** Disks of one server backed up or restored at once. */
export const DEFAULT_DISK_CONCURRENCY = 4;

export interface WorkflowsProps {
  functions: ServiceFunctions;
  /** Encrypts the state machines' log groups (execution data includes job and volume ids). */
  logKey: IKey;
  /** Segments of one backup or restore processed at once (the Map's MaxConcurrency). Default 4. */
  maxConcurrency?: number;
  /** Disks of one server backup or restore processed at once (the disks Map's MaxConcurrency). Default 4. */
  diskConcurrency?: number;
  logRetention?: RetentionDays;
}

/**
 * One state machine per entry of the workflow registry, built by the entry's shape. Every machine ends its
 * failures in one path: the workflow's fail step (job FAIL, resources put back), then a failure notification.
 */
export class Workflows extends Construct {
  readonly machines: Record<WorkflowName, StateMachine>;
  private readonly fns: ServiceFunctions;
  private readonly maxConcurrency: number;
  private readonly diskConcurrency: number;
  private readonly logRetention: RetentionDays | undefined;
  private readonly logKey: IKey;

  constructor(scope: Construct, id: string, props: WorkflowsProps) {
    super(scope, id);
    this.maxConcurrency = props.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    this.diskConcurrency = props.diskConcurrency ?? DEFAULT_DISK_CONCURRENCY;
    for (const [name, value] of Object.entries({ maxConcurrency: this.maxConcurrency, diskConcurrency: this.diskConcurrency })) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`OpenVBS: ${name} must be a positive integer, got ${value}`);
    }
    this.fns = props.functions;
    this.logRetention = props.logRetention;
    this.logKey = props.logKey;
    this.machines = Object.fromEntries(WORKFLOW_NAMES.map((name) => [name, this.build(name, WORKFLOWS[name])])) as Record<WorkflowName, StateMachine>;
  }

  private build(workflow: WorkflowName, spec: WorkflowSpec): StateMachine {
    const scope = new Construct(this, spec.id);
    const invoked = new Set<HandlerName>();
    const fn = (name: HandlerName): IFunction => {
      invoked.add(name);
      return this.fns.fn(name);
    };
    const done = new Succeed(scope, 'Done');
    const failed = new Fail(scope, 'Failed', { error: 'OpenVBS.JobFailed', cause: 'The job failed; its fail_reason says why.' });
    const markFailed = lambdaTask(scope, 'MarkFailed', fn(spec.fail), { resultPath: JsonPath.DISCARD });
    const notifyFailure = notifyTask(scope, 'NotifyFailure', fn('notify'), spec.notifyEvent, 'failure', failed);
    markFailed.next(notifyFailure);
    notifyFailure.next(failed);
    const notifySuccess = notifyTask(scope, 'NotifySuccess', fn('notify'), spec.notifyEvent, 'success', done);
    const work =
      spec.shape === 'segmented' ? this.segmentedSteps(scope, spec, fn) : spec.shape === 'fanout' ? this.fanOutSteps(scope, spec, fn) : this.singleStep(scope, spec, fn);
    for (const step of work.catching) step.addCatch(markFailed, { errors: ['States.ALL'], resultPath: '$.error' });
    const machine = this.machine(workflow, work.chain.next(notifySuccess).next(done));
    // CDK grants lambda:InvokeFunction on `<arn>` and `<arn>:*` (any version or alias) of each invoked function.
    acknowledgeWildcardResource(machine.role, '*', `${REASONS.xray} The same holds for the CloudWatch Logs delivery actions (CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, ...) that vended state machine logging needs.`);
    for (const name of invoked) {
      acknowledgeWildcardResource(machine.role, `<${functionLogicalId(name)}.Arn>:*`, `Step Functions invokes ${name} as its LambdaInvoke task; the ":*" form covers the function's versions and aliases, nothing else.`);
    }
    return machine;
  }

  /** Prepare → Map over the segments the prepare step returns → commit. */
  private segmentedSteps(scope: Construct, spec: SegmentedWorkflowSpec, fn: (name: HandlerName) => IFunction, prefix = '') {
    const prepare = lambdaTask(scope, `${prefix}Prepare`, fn(spec.prepare), { resultPath: '$.work' });
    const segment = lambdaTask(scope, `${prefix}Segment`, fn(spec.segment), {});
    const map = new MapState(scope, `${prefix}${spec.mapName}`, {
      itemsPath: '$.work.segments',
      itemSelector: {
        projectId: JsonPath.stringAt('$.projectId'),
        jobId: JsonPath.stringAt('$.jobId'),
        backupId: JsonPath.stringAt('$.backupId'),
        volumeId: JsonPath.stringAt('$.volumeId'),
        segment: JsonPath.stringAt('$$.Map.Item.Value'),
      },
      maxConcurrency: this.maxConcurrency,
      resultPath: JsonPath.DISCARD,
    });
    map.itemProcessor(segment);
    const commit = lambdaTask(scope, `${prefix}Commit`, fn(spec.commit), { resultPath: JsonPath.DISCARD });
    return { chain: prepare.next(map).next(commit), catching: [prepare, map, commit] };
  }

  /**
   * Prepare → Map over the disks the prepare step returns, each disk through the per-disk workflow's steps
   * (state names prefixed `Disk`) → commit. A disk that fails runs the per-disk fail step (its own job ends
   * FAIL with the reason), then fails its iteration, which fails the Map into the workflow's failure path.
   */
  private fanOutSteps(scope: Construct, spec: FanOutWorkflowSpec, fn: (name: HandlerName) => IFunction) {
    const prepare = lambdaTask(scope, 'Prepare', fn(spec.prepare), { resultPath: '$.work' });
    const perDisk = WORKFLOWS[spec.perDisk];
    const disk = this.segmentedSteps(scope, perDisk, fn, 'Disk');
    const diskFailed = new Fail(scope, 'DiskFailed', { error: 'OpenVBS.DiskFailed', cause: "A disk failed; its job's fail_reason says why." });
    const markDiskFailed = lambdaTask(scope, 'DiskMarkFailed', fn(perDisk.fail), { resultPath: JsonPath.DISCARD });
    markDiskFailed.next(diskFailed);
    for (const step of disk.catching) step.addCatch(markDiskFailed, { errors: ['States.ALL'], resultPath: '$.error' });
    const map = new MapState(scope, spec.mapName, {
      itemsPath: '$.work.disks',
      itemSelector: {
        projectId: JsonPath.stringAt('$$.Map.Item.Value.projectId'),
        jobId: JsonPath.stringAt('$$.Map.Item.Value.jobId'),
        backupId: JsonPath.stringAt('$$.Map.Item.Value.backupId'),
        volumeId: JsonPath.stringAt('$$.Map.Item.Value.volumeId'),
        name: JsonPath.stringAt('$$.Map.Item.Value.name'),
      },
      maxConcurrency: this.diskConcurrency,
      resultPath: JsonPath.DISCARD,
    });
    map.itemProcessor(disk.chain);
    const commit = lambdaTask(scope, 'Commit', fn(spec.commit), { resultPath: JsonPath.DISCARD });
    return { chain: prepare.next(map).next(commit), catching: [prepare, map, commit] };
  }

  private singleStep(scope: Construct, spec: SingleStepWorkflowSpec, fn: (name: HandlerName) => IFunction) {
    const step = lambdaTask(scope, spec.stepName, fn(spec.step), { resultPath: JsonPath.DISCARD });
    return { chain: step, catching: [step] };
  }

  private machine(workflow: WorkflowName, definition: IChainable): StateMachine {
    const id = WORKFLOWS[workflow].id;
    const logGroup = new LogGroup(this, `${id}Logs`, {
      logGroupName: LOG_GROUP_NAMES.states(Stack.of(this).stackName, id),
      encryptionKey: this.logKey,
      retention: this.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machine = new StateMachine(this, `${id}StateMachine`, {
      comment: `OpenVBS ${workflow}`,
      definitionBody: DefinitionBody.fromChainable(definition),
      stateMachineType: StateMachineType.STANDARD,
      timeout: Duration.seconds(WORKFLOWS[workflow].timeoutSeconds),
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
  task.addRetry(THROTTLED_RETRY);
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

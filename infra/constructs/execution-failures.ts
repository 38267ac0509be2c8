// Every execution of the stack's state machines that ends FAILED, TIMED_OUT or ABORTED goes to `execution-failed`,
// which runs its workflow's failure path: nothing stays locked, `creating` or RUNNING when an execution ends in a
// way no Catch sees (history limit, execution timeout, StopExecution, a failing failure step).
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { WORKFLOW_NAMES } from '../../lib/workflows/registry.ts';
import type { WorkflowName } from '../../lib/workflows/registry.ts';
import { ENDED_BADLY } from '../../lib/workflows/steps/execution-failed.ts';

export interface ExecutionFailuresProps {
  handler: IFunction;
  machines: Record<WorkflowName, IStateMachine>;
}

export class ExecutionFailures extends Construct {
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: ExecutionFailuresProps) {
    super(scope, id);
    this.rule = new Rule(this, 'Rule', {
      description: 'OpenVBS: run the failure path of every execution that ended FAILED, TIMED_OUT or ABORTED',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: {
          status: [...ENDED_BADLY],
          stateMachineArn: WORKFLOW_NAMES.map((workflow) => props.machines[workflow].stateMachineArn),
        },
      },
      // EventBridge retries a failed hand-over for 24 hours; Lambda then retries the function twice and leaves
      // the event in the function's dead-letter queue.
      targets: [new LambdaFunction(props.handler)],
    });
  }
}

// The periodic trigger: one EventBridge rule fires policy-tick, which finds due backup policies and starts them.
import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface SchedulesProps {
  policyTick: IFunction;
  /** Default 5 minutes: the finest granularity a backup policy can ask for. */
  interval?: Duration;
}

export class Schedules extends Construct {
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    this.rule = new Rule(this, 'PolicyTick', {
      description: 'OpenVBS: find due backup policies and start their runs',
      schedule: Schedule.rate(props.interval ?? Duration.minutes(5)),
      targets: [new LambdaFunction(props.policyTick, { retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });
  }
}

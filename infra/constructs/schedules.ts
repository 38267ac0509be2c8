// The periodic triggers: one EventBridge rule fires policy-tick, which finds due backup policies and starts them;
// another runs the daily integrity check (check-run) over every project; a third the daily garbage collection (gc-run).
import { Duration } from 'aws-cdk-lib';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface SchedulesProps {
  policyTick: IFunction;
  /** Default 5 minutes: the finest granularity a backup policy can ask for. */
  interval?: Duration;
  /** The integrity check; its rule runs it daily. */
  checkRun?: IFunction;
  /** Garbage collection; its rule runs it daily. */
  gcRun?: IFunction;
  /** Percent of each project's packs the daily check reads and verifies (a different subset each day). Default 5. */
  checkReadDataPercent?: number;
}

export class Schedules extends Construct {
  readonly rule: Rule;
  readonly checkRule: Rule | undefined;
  readonly gcRule: Rule | undefined;

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    this.rule = new Rule(this, 'PolicyTick', {
      description: 'OpenVBS: find due backup policies and start their runs',
      schedule: Schedule.rate(props.interval ?? Duration.minutes(5)),
      targets: [new LambdaFunction(props.policyTick, { retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });
    this.checkRule = props.checkRun
      ? new Rule(this, 'CheckRun', {
          description: 'OpenVBS: daily integrity check of every project\'s backups (metadata, and a share of the packs read)',
          schedule: Schedule.cron({ hour: '3', minute: '17' }),
          targets: [
            new LambdaFunction(props.checkRun, {
              event: RuleTargetInput.fromObject({ readDataPercent: props.checkReadDataPercent ?? 5 }),
              retryAttempts: 0, // a failed check is seen in the function's dead-letter queue; tomorrow's run checks again
              maxEventAge: Duration.hours(1),
            }),
          ],
        })
      : undefined;
    this.gcRule = props.gcRun
      ? new Rule(this, 'GcRun', {
          description: 'OpenVBS: daily garbage collection (index entries, packs and manifests no backup references)',
          schedule: Schedule.cron({ hour: '2', minute: '41' }),
          // Nothing is lost by a missed run: the next one does its work. A failure notifies and lands in the DLQ.
          targets: [new LambdaFunction(props.gcRun, { retryAttempts: 0, maxEventAge: Duration.hours(1) })],
        })
      : undefined;
  }
}

// WorkflowStarter on AWS Step Functions: one state machine per workflow, ARNs from the environment the
// CDK stack gives the api function (the variable names come from the workflow registry). Starting with
// the same name and input again is idempotent (Step Functions returns the running execution), so a
// retried request cannot start a job twice.
import { ExecutionDoesNotExist, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { WORKFLOWS, WORKFLOW_NAMES } from './registry.ts';
import type { WorkflowName, WorkflowStarter } from './registry.ts';

export class SfnWorkflowStarter implements WorkflowStarter {
  private readonly sfn: SFNClient;
  private readonly arns: Record<WorkflowName, string>;

  constructor(sfn: SFNClient, arns: Record<WorkflowName, string>) {
    this.sfn = sfn;
    this.arns = arns;
  }

  /** Reads every workflow's ARN from the environment; throws naming the first one missing. */
  static fromEnv(sfn: SFNClient, env: NodeJS.ProcessEnv = process.env): SfnWorkflowStarter {
    const arns = {} as Record<WorkflowName, string>;
    for (const wf of WORKFLOW_NAMES) {
      const value = env[WORKFLOWS[wf].arnEnv];
      if (!value) throw new Error(`${WORKFLOWS[wf].arnEnv} is not set`);
      arns[wf] = value;
    }
    return new SfnWorkflowStarter(sfn, arns);
  }

  async start(workflow: WorkflowName, name: string, input: unknown): Promise<{ executionArn: string }> {
    const res = await this.sfn.send(new StartExecutionCommand({ stateMachineArn: this.arns[workflow], name, input: JSON.stringify(input) }));
    if (!res.executionArn) throw new Error(`Step Functions returned no execution ARN for ${workflow}`);
    return { executionArn: res.executionArn };
  }

  async stop(executionArn: string, reason: { error: string; cause: string }): Promise<void> {
    try {
      // A stopped execution ends ABORTED; the execution-failed rule then runs its failure path.
      await this.sfn.send(new StopExecutionCommand({ executionArn, error: reason.error, cause: reason.cause }));
    } catch (err) {
      if (!(err instanceof ExecutionDoesNotExist)) throw err;
    }
  }
}

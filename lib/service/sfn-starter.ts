// WorkflowStarter on AWS Step Functions: one state machine per workflow, ARNs from the environment the
// CDK stack gives the api function. Starting with the same name and input again is idempotent
// (Step Functions returns the running execution), so a retried request cannot start a job twice.
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { WORKFLOWS } from '../workflows/contracts.ts';
import type { WorkflowName, WorkflowStarter } from '../workflows/contracts.ts';

/** Environment variable that names each workflow's state machine ARN. */
export const WORKFLOW_ARN_ENV: Record<WorkflowName, string> = {
  'volume-backup': 'OPENVBS_WORKFLOW_VOLUME_BACKUP_ARN',
  'volume-restore': 'OPENVBS_WORKFLOW_VOLUME_RESTORE_ARN',
  'backup-delete': 'OPENVBS_WORKFLOW_BACKUP_DELETE_ARN',
};

export class SfnWorkflowStarter implements WorkflowStarter {
  private readonly sfn: SFNClient;
  private readonly arns: Record<WorkflowName, string>;

  constructor(sfn: SFNClient, arns: Record<WorkflowName, string>) {
    this.sfn = sfn;
    this.arns = arns;
  }

  /** Reads the three ARNs from the environment; throws naming the first one missing. */
  static fromEnv(sfn: SFNClient, env: NodeJS.ProcessEnv = process.env): SfnWorkflowStarter {
    const arns = {} as Record<WorkflowName, string>;
    for (const wf of WORKFLOWS) {
      const value = env[WORKFLOW_ARN_ENV[wf]];
      if (!value) throw new Error(`${WORKFLOW_ARN_ENV[wf]} is not set`);
      arns[wf] = value;
    }
    return new SfnWorkflowStarter(sfn, arns);
  }

  async start(workflow: WorkflowName, name: string, input: unknown): Promise<{ executionArn: string }> {
    const res = await this.sfn.send(new StartExecutionCommand({ stateMachineArn: this.arns[workflow], name, input: JSON.stringify(input) }));
    if (!res.executionArn) throw new Error(`Step Functions returned no execution ARN for ${workflow}`);
    return { executionArn: res.executionArn };
  }
}

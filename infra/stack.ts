// OpenVbsStack: storage, the Lambda handlers, the three workflows (and the failure path of executions that end
// outside it), the REST API and the policy schedule.
import { CfnOutput, Stack } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { WORKFLOWS, WORKFLOW_NAMES, stateMachineLogicalId } from '../lib/workflows/registry.ts';
import type { WorkflowName } from '../lib/workflows/registry.ts';
import { acknowledgeWildcardResource } from './nag.ts';
import { Api } from './constructs/api.ts';
import { ExecutionFailures } from './constructs/execution-failures.ts';
import { ServiceFunctions } from './constructs/functions.ts';
import { Schedules } from './constructs/schedules.ts';
import { Storage } from './constructs/storage.ts';
import { Workflows } from './constructs/workflows.ts';

export const STACK_NAME = 'OpenVbsStack';

/** The workflows a policy run starts: its volume and server backups, and the deletes of its retention. */
const POLICY_RUN_WORKFLOWS: readonly WorkflowName[] = ['volume-backup', 'backup-delete', 'server-backup', 'checkpoint-delete'];

export interface OpenVbsStackProps extends StackProps {
  /** MaxConcurrency of the backup and restore segment Maps. Default 4. */
  maxConcurrency?: number;
  /** Disks of one server backup or restore processed at once. Default 4. */
  diskConcurrency?: number;
  /** Folder of the handler entries; default `<repo>/functions`. */
  functionsDir?: string;
  /** esbuild project root; default the repository root. */
  projectRoot?: string;
  /** API Gateway stage name; default `api`. */
  stageName?: string;
  /** Optional WAFv2 web ACL (REGIONAL) for the API stage. */
  webAclArn?: string;
}

export class OpenVbsStack extends Stack {
  readonly storage: Storage;
  readonly functions: ServiceFunctions;
  readonly workflows: Workflows;
  readonly api: Api;
  readonly schedules: Schedules;
  readonly executionFailures: ExecutionFailures;

  constructor(scope: Construct, id: string = STACK_NAME, props: OpenVbsStackProps = {}) {
    super(scope, id, { description: 'OpenVBS: open Volume Backup Service on AWS serverless', ...props });
    // Server access logs are delivered under a bucket policy (logging.s3.amazonaws.com), not the legacy ACL.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);

    this.storage = new Storage(this, 'Storage');
    this.functions = new ServiceFunctions(this, 'Functions', {
      storage: this.storage,
      ...(props.functionsDir ? { functionsDir: props.functionsDir } : {}),
      ...(props.projectRoot ? { projectRoot: props.projectRoot } : {}),
    });
    this.workflows = new Workflows(this, 'Workflows', {
      functions: this.functions,
      logKey: this.storage.key,
      ...(props.maxConcurrency !== undefined ? { maxConcurrency: props.maxConcurrency } : {}),
      ...(props.diskConcurrency !== undefined ? { diskConcurrency: props.diskConcurrency } : {}),
    });

    const apiFn = this.functions.fn('api');
    const executionFailed = this.functions.fn('execution-failed');
    const policyTick = this.functions.fn('policy-tick');
    for (const workflow of WORKFLOW_NAMES) {
      const machine = this.workflows.machines[workflow];
      // A policy run starts ordinary backup jobs (of volumes or servers), and its retention deletes through the backup
      // services: the tick may start those workflows (it knows every ARN, as the starter reads them all, and may start no other).
      policyTick.addEnvironment(WORKFLOWS[workflow].arnEnv, machine.stateMachineArn);
      if (POLICY_RUN_WORKFLOWS.includes(workflow)) machine.grantStartExecution(policyTick);
      apiFn.addEnvironment(WORKFLOWS[workflow].arnEnv, machine.stateMachineArn);
      machine.grantStartExecution(apiFn);
      // Cancel (POST /v1/{project}/jobs/{job}/cancel) stops the job's execution; execution-failed then ends it.
      machine.grantExecution(apiFn, 'states:StopExecution');
      acknowledgeWildcardResource(
        apiFn.role!,
        `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stateMachineLogicalId(workflow)}"}]}]}:*`,
        `A cancel stops the job's execution of ${workflow}; executions are named after jobs at run time, so the grant covers this state machine's executions and nothing else.`,
      );
      // Only to tell which workflow an ended execution belongs to: no Step Functions right comes with it.
      executionFailed.addEnvironment(WORKFLOWS[workflow].arnEnv, machine.stateMachineArn);
      new CfnOutput(this, `${WORKFLOWS[workflow].id}StateMachineArn`, { value: machine.stateMachineArn });
    }

    this.api = new Api(this, 'Api', {
      handler: apiFn,
      authorizer: this.functions.fn('authorizer'),
      logKey: this.storage.key,
      ...(props.stageName ? { stageName: props.stageName } : {}),
      ...(props.webAclArn ? { webAclArn: props.webAclArn } : {}),
    });
    this.executionFailures = new ExecutionFailures(this, 'ExecutionFailures', { handler: executionFailed, machines: this.workflows.machines });
    this.schedules = new Schedules(this, 'Schedules', { policyTick: this.functions.fn('policy-tick'), checkRun: this.functions.fn('check-run'), gcRun: this.functions.fn('gc-run') });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'OPENVBS_URL for the CLI' });
    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    new CfnOutput(this, 'CatalogTableName', { value: this.storage.catalogTable.tableName });
    new CfnOutput(this, 'ChunkTableName', { value: this.storage.chunkTable.tableName });
    new CfnOutput(this, 'ServiceKeyArn', { value: this.storage.key.keyArn });
    new CfnOutput(this, 'TopicArn', { value: this.storage.topic.topicArn });
  }
}

// Takes the state machines out of the synthesized CloudFormation template, so the local runtime runs
// exactly the definitions the CDK stack deploys. Lambda ARNs in the definitions are resolved to
// placeholders, and each Task state is mapped to its handler through the function's OPENVBS_HANDLER.
import type { WorkflowName } from '../workflows/contracts.ts';

type CfnValue = unknown;
interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
}

export interface LocalStateMachine {
  workflow: WorkflowName;
  definition: Record<string, unknown>;
  /** Task state name -> handler name (functions/<name>.ts). */
  taskHandlers: Record<string, string>;
}

const FAKE_ACCOUNT = '000000000000';
const FAKE_REGION = 'us-east-1';
const lambdaArn = (logicalId: string) => `arn:aws:lambda:${FAKE_REGION}:${FAKE_ACCOUNT}:function:${logicalId}`;

function resolve(value: CfnValue, template: CfnTemplate): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, CfnValue[]];
    return parts.map((p) => resolve(p, template)).join(sep);
  }
  if (Array.isArray(v['Fn::GetAtt'])) {
    const [id, attr] = v['Fn::GetAtt'] as [string, string];
    const res = template.Resources[id];
    if (res?.Type === 'AWS::Lambda::Function' && attr === 'Arn') return lambdaArn(id);
    return `arn:aws:local:${FAKE_REGION}:${FAKE_ACCOUNT}:${id}/${attr}`;
  }
  if (typeof v.Ref === 'string') {
    const pseudo: Record<string, string> = { 'AWS::Partition': 'aws', 'AWS::Region': FAKE_REGION, 'AWS::AccountId': FAKE_ACCOUNT, 'AWS::URLSuffix': 'amazonaws.com' };
    return pseudo[v.Ref] ?? v.Ref;
  }
  throw new Error(`cannot resolve CloudFormation value ${JSON.stringify(value).slice(0, 200)}`);
}

function handlerOf(template: CfnTemplate, functionArn: string): string {
  const logicalId = functionArn.split(':function:')[1]?.split(':')[0];
  const fn = logicalId ? template.Resources[logicalId] : undefined;
  const env = (fn?.Properties?.Environment as { Variables?: Record<string, string> } | undefined)?.Variables;
  const name = env?.OPENVBS_HANDLER;
  if (!name) throw new Error(`task resource ${functionArn} is not an OpenVBS function (no OPENVBS_HANDLER)`);
  return name;
}

function collectTasks(states: Record<string, Record<string, unknown>>, template: CfnTemplate, out: Record<string, string>) {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task') {
      const resource = String(state.Resource);
      const params = state.Parameters as Record<string, unknown> | undefined;
      const arn = resource.startsWith('arn:aws:states:::lambda:invoke') ? String(params?.FunctionName ?? '') : resource;
      out[name] = handlerOf(template, arn);
    }
    const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, Record<string, unknown>> } | undefined;
    if (processor) collectTasks(processor.States, template, out);
    for (const branch of (state.Branches as Array<{ States: Record<string, Record<string, unknown>> }> | undefined) ?? []) collectTasks(branch.States, template, out);
  }
}

/** Which workflow a machine is, told by the handler of its first state. */
const WORKFLOW_BY_FIRST_HANDLER: Record<string, WorkflowName> = {
  'backup-prepare': 'volume-backup',
  'restore-prepare': 'volume-restore',
  'delete-backup': 'backup-delete',
};

export function extractStateMachines(template: CfnTemplate): Map<WorkflowName, LocalStateMachine> {
  const machines = new Map<WorkflowName, LocalStateMachine>();
  for (const res of Object.values(template.Resources)) {
    if (res.Type !== 'AWS::StepFunctions::StateMachine') continue;
    const definition = JSON.parse(resolve(res.Properties?.DefinitionString, template)) as { StartAt: string; States: Record<string, Record<string, unknown>> };
    const taskHandlers: Record<string, string> = {};
    collectTasks(definition.States, template, taskHandlers);
    const workflow = WORKFLOW_BY_FIRST_HANDLER[taskHandlers[definition.StartAt] ?? ''];
    if (!workflow) throw new Error(`state machine starting at ${definition.StartAt} is not an OpenVBS workflow`);
    machines.set(workflow, { workflow, definition, taskHandlers });
  }
  return machines;
}

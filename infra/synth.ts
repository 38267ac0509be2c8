// In-process synthesis for the local runtime and the tests: builds the app in a temporary cloud assembly
// folder and returns the stack's CloudFormation template. Bundling is skipped unless asked for (CDK's own
// `aws:cdk:bundling-stacks=[]`) and so is CDK's CloudFormation validation: a few hundred milliseconds after the
// imports, with neither esbuild nor the network.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { HANDLER_NAMES, WORKFLOW_NAMES, stateMachineLogicalId } from '../lib/workflows/registry.ts';
import type { HandlerName, WorkflowName } from '../lib/workflows/registry.ts';
import type { OpenVbsStackProps } from './stack.ts';
import { OpenVbsStack, STACK_NAME } from './stack.ts';

export interface SynthesizeOptions {
  /** Bundle the handlers with esbuild (slow). Default false. */
  bundling?: boolean;
  /** MaxConcurrency of the segment Maps. Default 4. */
  maxConcurrency?: number;
  /** MaxConcurrency of the disks Maps (server backups and restores). Default 4. */
  diskConcurrency?: number;
  /**
   * Run CDK's built-in CloudFormation template validation (cfn-lint rules in WebAssembly; about a second on
   * first use). Default false here; `cdk synth` (infra/bin/app.ts) always runs it.
   */
  cfnValidation?: boolean;
}

/** A CloudFormation template as JSON (Resources, Outputs, ...). */
export type CfnTemplate = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; [k: string]: unknown }>; [k: string]: unknown };

export interface BuiltApp {
  app: App;
  stack: OpenVbsStack;
  /** The cloud assembly folder: `options.outdir`, or a temporary one that `dispose()` removes. */
  outdir: string;
  dispose(): void;
}

/** Builds (does not synthesize) the app with one OpenVbsStack. Tests use it for construct-level checks. */
export function buildApp(options: SynthesizeOptions & { outdir?: string; stackProps?: OpenVbsStackProps } = {}): BuiltApp {
  const outdir = options.outdir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'openvbs-cdk-'));
  const dispose = () => {
    if (!options.outdir) fs.rmSync(outdir, { recursive: true, force: true });
  };
  const app = new App({
    outdir,
    builtinCloudFormationValidation: options.cfnValidation ?? false,
    context: options.bundling ? {} : { 'aws:cdk:bundling-stacks': [] },
  });
  const stack = new OpenVbsStack(app, STACK_NAME, {
    ...options.stackProps,
    ...(options.maxConcurrency !== undefined ? { maxConcurrency: options.maxConcurrency } : {}),
    ...(options.diskConcurrency !== undefined ? { diskConcurrency: options.diskConcurrency } : {}),
  });
  return { app, stack, outdir, dispose };
}

/** Synthesizes OpenVbsStack in-process and returns its template. */
export function synthesizeTemplate(options: SynthesizeOptions = {}): CfnTemplate {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'openvbs-cdk-'));
  try {
    const { app, stack } = buildApp({ ...options, outdir });
    const assembly = app.synth();
    return assembly.getStackByName(stack.stackName).template as CfnTemplate;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** The ARN placeholder a Lambda task's Resource gets in `workflowDefinitions`. */
export const LOCAL_FUNCTION_ARN_PREFIX = 'arn:aws:lambda:us-east-1:000000000000:function:openvbs-';

/**
 * Each workflow's state machine definition (ASL as an object), with every intrinsic reference resolved for local
 * execution: a Lambda function reference becomes `arn:aws:lambda:us-east-1:000000000000:function:openvbs-<handler>`
 * (the handler from the function's OPENVBS_HANDLER variable), anything else `<LogicalId>` / `<LogicalId.Attr>`.
 * The one resolver from the template to executable definitions: the local runtime and the tests both use it.
 */
export function workflowDefinitions(template: CfnTemplate): Record<WorkflowName, Record<string, unknown>> {
  const handlerOf = (logicalId: string): HandlerName | undefined => {
    const res = template.Resources[logicalId];
    if (res?.Type !== 'AWS::Lambda::Function') return undefined;
    const env = (res.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables;
    const name = env?.OPENVBS_HANDLER;
    return typeof name === 'string' && (HANDLER_NAMES as readonly string[]).includes(name) ? (name as HandlerName) : undefined;
  };
  const flatten = (part: unknown): string => {
    if (typeof part === 'string') return part;
    if (part && typeof part === 'object') {
      const obj = part as Record<string, unknown>;
      if (Array.isArray(obj['Fn::GetAtt'])) {
        const [id, attr] = obj['Fn::GetAtt'] as [string, string];
        const handler = attr === 'Arn' ? handlerOf(id) : undefined;
        return handler ? `${LOCAL_FUNCTION_ARN_PREFIX}${handler}` : `<${id}.${attr}>`;
      }
      if (typeof obj.Ref === 'string') return `<${obj.Ref}>`;
      if (Array.isArray(obj['Fn::Join'])) {
        const [sep, parts] = obj['Fn::Join'] as [string, unknown[]];
        return parts.map(flatten).join(sep);
      }
    }
    throw new Error(`OpenVBS: unexpected intrinsic in a state machine definition: ${JSON.stringify(part)}`);
  };
  const out = {} as Record<WorkflowName, Record<string, unknown>>;
  for (const workflow of WORKFLOW_NAMES) {
    const res = template.Resources[stateMachineLogicalId(workflow)];
    if (!res) throw new Error(`OpenVBS: no state machine ${stateMachineLogicalId(workflow)} in the template`);
    out[workflow] = JSON.parse(flatten(res.Properties?.DefinitionString)) as Record<string, unknown>;
  }
  return out;
}

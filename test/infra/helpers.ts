// Shared by the infra tests: one synthesized template per test file (bundling skipped) and small readers.
import { synthesizeTemplate } from '../../infra/synth.ts';
import type { CfnTemplate } from '../../infra/synth.ts';

let cached: CfnTemplate | undefined;

export function template(): CfnTemplate {
  cached ??= synthesizeTemplate();
  return cached;
}

export type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, unknown> };

export function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

export function resourcesOf(statement: Statement): unknown[] {
  return Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
}

/** Every statement of every AWS::IAM::Policy attached to the role with this logical id (plus inline policies). */
export function roleStatements(tpl: CfnTemplate, roleLogicalId: string): Statement[] {
  const out: Statement[] = [];
  const role = tpl.Resources[roleLogicalId];
  if (!role) throw new Error(`no role ${roleLogicalId}`);
  for (const p of (role.Properties?.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }> | undefined) ?? []) out.push(...p.PolicyDocument.Statement);
  for (const res of Object.values(tpl.Resources)) {
    if (res.Type !== 'AWS::IAM::Policy') continue;
    const roles = res.Properties?.Roles as Array<{ Ref?: string }> | undefined;
    if (roles?.some((r) => r.Ref === roleLogicalId)) out.push(...(res.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);
  }
  return out;
}

/** Joins an Fn::Join / string, replacing every other intrinsic with a `<...>` placeholder string. */
export function joinIntrinsic(value: unknown): string {
  if (typeof value === 'string') return value;
  const obj = value as Record<string, unknown>;
  if (Array.isArray(obj['Fn::Join'])) {
    const [sep, parts] = obj['Fn::Join'] as [string, unknown[]];
    return parts.map(joinIntrinsic).join(sep);
  }
  if (Array.isArray(obj['Fn::GetAtt'])) return `<${(obj['Fn::GetAtt'] as string[]).join('.')}>`;
  if (typeof obj.Ref === 'string') return `<${obj.Ref}>`;
  return `<${JSON.stringify(value)}>`;
}

export type AslState = {
  Type: string;
  Resource?: string;
  Next?: string;
  End?: boolean;
  ResultPath?: string | null;
  Retry?: Array<{ ErrorEquals: string[]; IntervalSeconds?: number; MaxAttempts?: number; BackoffRate?: number; MaxDelaySeconds?: number; JitterStrategy?: string }>;
  Catch?: Array<{ ErrorEquals: string[]; ResultPath?: string; Next: string }>;
  ItemsPath?: string;
  ItemSelector?: Record<string, string>;
  MaxConcurrency?: number;
  ItemProcessor?: { StartAt: string; States: Record<string, AslState> };
  Parameters?: Record<string, unknown>;
};
export type Asl = { StartAt: string; States: Record<string, AslState> };

export function definitionOf(tpl: CfnTemplate, logicalId: string): Asl {
  const res = tpl.Resources[logicalId];
  if (res?.Type !== 'AWS::StepFunctions::StateMachine') throw new Error(`no state machine ${logicalId}`);
  return JSON.parse(joinIntrinsic(res.Properties?.DefinitionString)) as Asl;
}

/** All Task states of a definition, Map item processors included. */
export function tasksOf(asl: Asl): Array<[string, AslState]> {
  const out: Array<[string, AslState]> = [];
  for (const [name, state] of Object.entries(asl.States)) {
    if (state.Type === 'Task') out.push([name, state]);
    if (state.ItemProcessor) out.push(...tasksOf(state.ItemProcessor));
  }
  return out;
}

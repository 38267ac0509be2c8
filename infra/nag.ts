// The exceptions of both infrastructure linters, each beside the construct it is about, with its own reason.
// cdk-nag v3 acknowledgements go through CDK's own `Validations.of(construct).acknowledge()`; a finding of a
// granular rule (IAM4, IAM5) is acknowledged one by one as `<rule>[<finding>]`. checkov (scripts/checkov.mjs)
// reads its skips from the resource's CloudFormation Metadata: `checkov: { skip: [{ id, comment }] }`.
import { CfnResource, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${id}`, reason });
}

/** One IAM5 finding: a wildcard resource, written the way cdk-nag flattens it (`<Logical.Arn>/*`, `*`). */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  acknowledge(scope, `IAM5[Resource::${resource}]`, reason);
}

/** One checkov check skipped on the CloudFormation resource of `scope` (itself, or its default child). */
export function acknowledgeCheckov(scope: IConstruct, id: string, comment: string): void {
  const resource = CfnResource.isCfnResource(scope) ? scope : scope.node.defaultChild;
  if (!resource || !CfnResource.isCfnResource(resource)) throw new Error(`OpenVBS: ${scope.node.path} has no CloudFormation resource to skip ${id} on`);
  const checkov = resource.getMetadata('checkov') as { skip?: Array<{ id: string; comment: string }> } | undefined;
  resource.addMetadata('checkov', { skip: [...(checkov?.skip ?? []), { id, comment }] });
}

export const REASONS = {
  xray: 'X-Ray PutTraceSegments/PutTelemetryRecords (and the sampling calls) do not support resource-level permissions; "*" is the only valid resource.',
  runtime:
    'OpenVBS pins Node.js 22 everywhere (repository toolchain, tests and Lambda) for built-in zstd in zlib and a single tested runtime; moving to a newer runtime is a deliberate, tested upgrade.',
} as const;

// cdk-nag v3 acknowledgements go through CDK's own `Validations.of(construct).acknowledge()`; a finding of a
// granular rule (IAM4, IAM5) is acknowledged one by one as `<rule>[<finding>]`. These helpers keep the call
// sites short: every acknowledgement still sits beside the construct it is about, with its own reason.
import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${id}`, reason });
}

/** One IAM5 finding: a wildcard resource, written the way cdk-nag flattens it (`<Logical.Arn>/*`, `*`). */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  acknowledge(scope, `IAM5[Resource::${resource}]`, reason);
}

export const REASONS = {
  xray: 'X-Ray PutTraceSegments/PutTelemetryRecords (and the sampling calls) do not support resource-level permissions; "*" is the only valid resource.',
  runtime:
    'OpenVBS pins Node.js 22 everywhere (repository toolchain, tests and Lambda) for built-in zstd in zlib and a single tested runtime; moving to a newer runtime is a deliberate, tested upgrade.',
} as const;

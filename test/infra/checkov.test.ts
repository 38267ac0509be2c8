// checkov, the second linter beside cdk-nag: its CloudFormation checks on the synthesized template fail nothing,
// and every check skipped sits on its resource with a reason (infra/nag.ts acknowledgeCheckov). The same run as
// `node scripts/checkov.mjs`.
import { beforeAll, describe, expect, it } from 'vitest';
import { HANDLER_NAMES } from '../../lib/workflows/registry.ts';
import { HANDLER_SPECS } from '../../infra/handlers.ts';
import { checkStack, installCheckov } from '../../scripts/checkov.mjs';
import type { CheckovReport } from '../../scripts/checkov.mjs';

let report: CheckovReport;

beforeAll(async () => {
  // Pinned, into .cache/checkov-venv; idempotent (`npm test` installs it before the run).
  installCheckov({ quiet: true });
  report = await checkStack();
}, 600_000);

describe('checkov CloudFormation checks', () => {
  it('fail nothing', () => {
    expect(report.failed.map((f) => `${f.checkId} ${f.resource}: ${f.name}`)).toEqual([]);
  });

  it('ran on the whole stack', () => {
    expect(report.passed).toBeGreaterThan(400);
  });

  it('are skipped only with a reason, and exactly this inventory', () => {
    for (const skip of report.skipped) expect(skip.comment.length, `${skip.checkId} ${skip.resource}`).toBeGreaterThan(60);
    const count: Record<string, number> = {};
    for (const skip of report.skipped) count[skip.checkId] = (count[skip.checkId] ?? 0) + 1;
    const functions = HANDLER_NAMES.length;
    const syncFunctions = HANDLER_NAMES.filter((name) => HANDLER_SPECS[name].invocation === 'sync').length;
    expect(count).toEqual({
      // Every function: no VPC (AWS endpoints only), environment variables without secrets.
      CKV_AWS_117: functions,
      CKV_AWS_173: functions,
      // Synchronously invoked functions: Lambda uses no dead-letter queue there; the caller sees the error.
      CKV_AWS_116: syncFunctions,
      // The access-log bucket: not logged into itself, not versioned.
      CKV_AWS_18: 1,
      CKV_AWS_21: 1,
      // GET /openapi.json needs no token; the stage caches nothing.
      CKV_AWS_59: 1,
      CKV_AWS_120: 1,
    });
    expect(report.skipped.filter((s) => s.checkId === 'CKV_AWS_18' || s.checkId === 'CKV_AWS_21').map((s) => s.resource)).toEqual([
      'AWS::S3::Bucket.AccessLogBucket',
      'AWS::S3::Bucket.AccessLogBucket',
    ]);
  });
});

// cdk-nag AwsSolutions: no unacknowledged error or warning anywhere in the stack. cdk-nag v3 is a CDK validation
// plugin (Validations.of(app).addPlugins), and suppressions are CDK acknowledgements
// (Validations.of(construct).acknowledge) that sit beside each resource. `validateScope` runs the very rules
// `cdk synth` runs and returns what the acknowledgements leave.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import cdkNag from 'cdk-nag';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { functionLogicalId } from '../../infra/handlers.ts';
import { HANDLER_NAMES, WORKFLOWS, WORKFLOW_NAMES, stateMachineLogicalId } from '../../lib/workflows/registry.ts';
import type { HandlerName, SegmentedWorkflowSpec, WorkflowSpec } from '../../lib/workflows/registry.ts';
import { REPO_ROOT } from '../../infra/constructs/functions.ts';
import { buildApp } from '../../infra/synth.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('cdk-nag AwsSolutionsChecks', () => {
  it('leaves zero unacknowledged errors and warnings', () => {
    const { app, dispose } = buildApp();
    onTestFinished(dispose);
    const report = new cdkNag.AwsSolutionsChecks(app).validateScope(app);
    const findings = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('acknowledges exactly this inventory of findings (a new one must be fixed or reasoned about)', () => {
    vi.spyOn(Validations.prototype, 'acknowledge').mockImplementation(() => {});
    const { app, dispose } = buildApp();
    onTestFinished(dispose);
    const report = new cdkNag.AwsSolutionsChecks(app).validateScope(app);
    const count = Object.fromEntries(report.violations.map((v) => [v.ruleName, v.violatingResources.length]));
    // Each state machine's role may invoke its tasks' functions (`<arn>:*`, versions and aliases): one finding per
    // (function, state machine that invokes it).
    const invokers: Record<string, number> = {};
    for (const spec of Object.values(WORKFLOWS) as WorkflowSpec[]) {
      const handlers = new Set<HandlerName>([spec.fail, 'notify']);
      if (spec.shape === 'single') handlers.add(spec.step);
      const segmented: SegmentedWorkflowSpec[] = spec.shape === 'segmented' ? [spec] : spec.shape === 'fanout' ? [WORKFLOWS[spec.perDisk]] : [];
      if (spec.shape === 'fanout') [spec.prepare, spec.commit].forEach((h) => handlers.add(h));
      for (const s of segmented) [s.prepare, s.segment, s.commit, s.fail].forEach((h) => handlers.add(h));
      for (const h of handlers) invokers[`AwsSolutions-IAM5[Resource::<${functionLogicalId(h)}.Arn>:*]`] = (invokers[`AwsSolutions-IAM5[Resource::<${functionLogicalId(h)}.Arn>:*]`] ?? 0) + 1;
    }
    const functions = HANDLER_NAMES.length;
    expect(count).toEqual({
      // Every function role and state machine role: X-Ray (and vended-log delivery) actions.
      'AwsSolutions-IAM5[Resource::*]': functions + WORKFLOW_NAMES.length,
      'AwsSolutions-L1': functions,
      // Data keys: backup-prepare, server-backup-prepare (new key domains), backup-segment, restore-segment, check-run, gc-run;
      // and encrypted EBS volumes' own keys through EBS (volume-access.ts): backup-segment, restore-prepare, -segment, -commit.
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]': 8,
      // Readers and writers of packs and manifests: backup-segment, restore-segment, check-run and gc-run.
      'AwsSolutions-IAM5[Resource::<DataBucket.Arn>/*]': 4,
      // The one deleter, garbage collection: unreferenced packs and deleted backups' manifests.
      'AwsSolutions-IAM5[Resource::<DataBucket.Arn>/packs/*]': 1,
      'AwsSolutions-IAM5[Resource::<DataBucket.Arn>/manifests/*]': 1,
      // EC2 and EBS (infra/constructs/volume-access.ts): snapshots tagged with the project, the project's
      // instances, and volumes (a disk belongs to a project through its instance: no tag to narrow by).
      // Snapshots: every role that takes, reads, writes or releases one (since the workflows run on EBS, the backup,
      // restore and delete steps and their fail steps release snapshots too).
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*]': 15,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]': 5,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:volume/*]': 3,
      ...invokers,
      // The api's cancel stops executions of each state machine (named after jobs at run time).
      ...Object.fromEntries(
        WORKFLOW_NAMES.map((w) => [
          `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stateMachineLogicalId(w)}"}]}]}:*]`,
          1,
        ]),
      ),
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]': 1,
      'AwsSolutions-APIG3': 1,
      'AwsSolutions-APIG4': 1,
      'AwsSolutions-COG4': 3,
    });
  });

  it('runs in the real entry point: `node infra/bin/app.ts` synthesizes with the plugin and nothing to report', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'openvbs-app-'));
    try {
      const res = spawnSync(path.join(REPO_ROOT, 'node_modules/.bin/node'), ['infra/bin/app.ts'], {
        cwd: REPO_ROOT,
        env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [] }) },
        encoding: 'utf8',
      });
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
      const template = JSON.parse(fs.readFileSync(path.join(outdir, 'OpenVbsStack.template.json'), 'utf8')) as { Resources: object };
      expect(Object.keys(template.Resources).length).toBeGreaterThan(50);
      const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: unknown[] };
      expect(report.pluginReports).toEqual([]);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });

  it('synthesizes in-process with the plugin and CloudFormation validation, with nothing to report', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'openvbs-nag-'));
    try {
      const { app, stack } = buildApp({ outdir, cfnValidation: true });
      Validations.of(app).addPlugins(new cdkNag.AwsSolutionsChecks(app));
      expect(() => app.synth()).not.toThrow();
      const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: unknown[] };
      expect(report.pluginReports).toEqual([]);
      const annotations = Annotations.fromStack(stack);
      expect(annotations.findError('*', Match.anyValue())).toEqual([]);
      expect(annotations.findWarning('*', Match.anyValue())).toEqual([]);
      expect(annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
      expect(annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});

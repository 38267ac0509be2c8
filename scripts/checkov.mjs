#!/usr/bin/env node
// checkov, the second infrastructure linter beside cdk-nag: pinned, installed into a venv under .cache/, run with
// its CloudFormation checks on the synthesized OpenVbsStack template.
//   node scripts/checkov.mjs install   -> create the venv and install checkov (idempotent)
//   node scripts/checkov.mjs           -> install if needed, synthesize, check; exits 1 on any failed check
// A finding is fixed in infra/, or skipped beside its resource with a reason (infra/nag.ts acknowledgeCheckov).
// test/infra/checkov.test.ts runs the same functions under `npm test`.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPythonTool } from './python-tool.mjs';

export const CHECKOV_VERSION = '3.3.30';

export function installCheckov({ quiet = false } = {}) {
  return installPythonTool({ venv: 'checkov-venv', requirement: `checkov==${CHECKOV_VERSION}`, version: CHECKOV_VERSION, bin: 'checkov', purpose: 'to run checkov', quiet });
}

/**
 * Runs checkov's CloudFormation checks on one template file. Resolves to
 * { passed, failed: [{ checkId, name, resource }], skipped: [{ checkId, resource, comment }] }.
 */
export function runCheckov(templateFile) {
  const bin = installCheckov({ quiet: true });
  const args = ['--file', templateFile, '--framework', 'cloudformation', '--output', 'json', '--compact', '--skip-download'];
  return new Promise((resolve, reject) => {
    // Exit code 1 means "some check failed"; the JSON on stdout says which.
    execFile(bin, args, { env: { ...process.env, BC_SKIP_MAPPING: 'TRUE' }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && err.code !== 1) return reject(new Error(`checkov failed (${err.code}): ${stderr || err.message}`));
      let report;
      try {
        report = JSON.parse(stdout);
      } catch {
        return reject(new Error(`checkov printed no JSON report: ${stdout.slice(0, 500)} ${stderr.slice(0, 500)}`));
      }
      // An empty run prints a summary without `results`; a template with resources always has them.
      const results = report.results ?? {};
      const finding = (c) => ({ checkId: c.check_id, name: c.check_name, resource: c.resource });
      resolve({
        passed: (results.passed_checks ?? []).length,
        failed: (results.failed_checks ?? []).map(finding),
        skipped: (results.skipped_checks ?? []).map((c) => ({ ...finding(c), comment: c.check_result?.suppress_comment ?? '' })),
      });
    });
  });
}

/** Synthesizes OpenVbsStack (bundling skipped) into a temporary file and checks it. */
export async function checkStack() {
  const { synthesizeTemplate } = await import('../infra/synth.ts');
  const dir = mkdtempSync(join(tmpdir(), 'openvbs-checkov-'));
  try {
    const file = join(dir, 'OpenVbsStack.template.json');
    writeFileSync(file, JSON.stringify(synthesizeTemplate(), null, 1));
    return await runCheckov(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const command = process.argv[2];
  if (command === 'install') {
    console.log(`checkov==${CHECKOV_VERSION} ready: ${installCheckov()}`);
  } else if (command === undefined) {
    installCheckov();
    const report = await checkStack();
    for (const f of report.failed) console.log(`FAILED  ${f.checkId} ${f.resource}: ${f.name}`);
    console.log(`checkov: ${report.passed} passed, ${report.failed.length} failed, ${report.skipped.length} acknowledged`);
    process.exitCode = report.failed.length ? 1 : 0;
  } else {
    console.error('usage: node scripts/checkov.mjs [install]');
    process.exitCode = 2;
  }
}

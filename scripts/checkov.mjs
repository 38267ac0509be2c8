#!/usr/bin/env node
// checkov, the second infrastructure linter beside cdk-nag: pinned, installed into a venv under .cache/, run with
// its CloudFormation checks on the synthesized OpenVbsStack template.
//   node scripts/checkov.mjs install   -> create the venv and install checkov (idempotent)
//   node scripts/checkov.mjs           -> install if needed, synthesize, check; exits 1 on any failed check
// A finding is fixed in infra/, or skipped beside its resource with a reason (infra/nag.ts acknowledgeCheckov).
// test/infra/checkov.test.ts runs the same functions under `npm test`.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHECKOV_VERSION = '3.3.30';
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const venvDir = join(repoRoot, '.cache', 'checkov-venv');
const stampFile = join(venvDir, '.openvbs-checkov-version');
const checkovBin = join(venvDir, 'bin', 'checkov');

function python() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch { /* try the next one */ }
  }
  throw new Error('python3 is required to run checkov');
}

export function installCheckov({ quiet = false } = {}) {
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === CHECKOV_VERSION && existsSync(checkovBin)) {
    return checkovBin;
  }
  mkdirSync(dirname(venvDir), { recursive: true });
  const stdio = quiet ? 'ignore' : 'inherit';
  if (!existsSync(join(venvDir, 'bin', 'pip'))) execFileSync(python(), ['-m', 'venv', venvDir], { stdio });
  execFileSync(join(venvDir, 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', `checkov==${CHECKOV_VERSION}`], { stdio });
  writeFileSync(stampFile, CHECKOV_VERSION + '\n');
  return checkovBin;
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
    installCheckov();
    console.log(`checkov==${CHECKOV_VERSION} ready in ${venvDir}`);
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

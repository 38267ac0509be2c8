// One pinned Python tool in its own venv under .cache/ (moto, checkov, schemathesis): created and installed
// on first use, skipped when the pinned version is already there. Only the test and development tooling
// needs Python; the service itself does not.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function python(purpose) {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch { /* try the next one */ }
  }
  throw new Error(`python3 is required ${purpose}`);
}

/**
 * Installs `requirement` (e.g. "moto[server]==5.2.5") into .cache/<venv> unless `version` is stamped there
 * already; returns the path of the venv's `bin` entry point.
 */
export function installPythonTool({ venv, requirement, version, bin, purpose, quiet = false }) {
  const venvDir = join(repoRoot, '.cache', venv);
  const stampFile = join(venvDir, `.openvbs-${venv}-version`);
  const binPath = join(venvDir, 'bin', bin);
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === version && existsSync(binPath)) return binPath;
  mkdirSync(dirname(venvDir), { recursive: true });
  const stdio = quiet ? 'ignore' : 'inherit';
  if (!existsSync(join(venvDir, 'bin', 'pip'))) execFileSync(python(purpose), ['-m', 'venv', venvDir], { stdio });
  execFileSync(join(venvDir, 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', requirement], { stdio });
  writeFileSync(stampFile, `${version}\n`);
  return binPath;
}

#!/usr/bin/env node
// restic for the race against OpenVBS (npm run bench:race), pinned, installed into .cache/restic/.
//   node scripts/restic.mjs install  -> builds restic with `go install` into .cache/restic/bin (GOPATH and
//                                       GOCACHE under .cache/restic); without Go, Debian's package through
//                                       apt-get. Idempotent. Prints the binary's path.
// Nothing here runs in `npm test`.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESTIC_VERSION = '0.19.1';
const MIN_VERSION = [0, 19];
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(repoRoot, '.cache', 'restic');
const cachedBin = join(cacheDir, 'bin', 'restic');

/** The version a restic binary reports ("restic 0.19.1 compiled with go1.26.8 on linux/amd64"), or undefined. */
function versionOf(bin) {
  try {
    const out = execFileSync(bin, ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /^restic (\d+\.\d+\.\d+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function atLeastMinimum(version) {
  const [major, minor] = version.split('.').map(Number);
  return major > MIN_VERSION[0] || (major === MIN_VERSION[0] && minor >= MIN_VERSION[1]);
}

function findGo() {
  for (const candidate of [process.env.GO, 'go', '/usr/local/go/bin/go']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['version'], { stdio: 'ignore' });
      return candidate;
    } catch { /* try the next one */ }
  }
  return undefined;
}

function log(quiet, line) {
  if (!quiet) console.error(line);
}

/**
 * Installs restic unless the right version is already there.
 * Resolves to { path, version, source } where source says how it was installed:
 * 'go install' (the pinned version from its Go module) or 'debian' (apt-get, whatever version Debian ships).
 */
export function installRestic({ quiet = false } = {}) {
  if (versionOf(cachedBin) === RESTIC_VERSION) return { path: cachedBin, version: RESTIC_VERSION, source: 'go install' };
  const go = findGo();
  if (go) {
    log(quiet, `restic: building ${RESTIC_VERSION} with ${go} install (about 2 minutes the first time)...`);
    mkdirSync(join(cacheDir, 'bin'), { recursive: true });
    execFileSync(go, ['install', `github.com/restic/restic/cmd/restic@v${RESTIC_VERSION}`], {
      stdio: quiet ? 'ignore' : ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        GOBIN: join(cacheDir, 'bin'),
        GOPATH: join(cacheDir, 'gopath'),
        GOCACHE: join(cacheDir, 'gocache'),
        GOFLAGS: '-modcacherw', // so the module cache can be removed without chmod
      },
    });
    const version = versionOf(cachedBin);
    if (version !== RESTIC_VERSION) throw new Error(`go install produced ${cachedBin} reporting ${version ?? 'nothing'}, not ${RESTIC_VERSION}`);
    return { path: cachedBin, version, source: 'go install' };
  }
  const system = '/usr/bin/restic';
  if (!versionOf(system)) {
    log(quiet, 'restic: Go is not installed; installing Debian\'s package with apt-get...');
    const stdio = quiet ? 'ignore' : ['ignore', 'inherit', 'inherit'];
    execFileSync('apt-get', ['update'], { stdio });
    execFileSync('apt-get', ['install', '-y', 'restic'], { stdio, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  const version = versionOf(system);
  if (!version) throw new Error('apt-get installed restic, but /usr/bin/restic does not run');
  if (!atLeastMinimum(version)) log(quiet, `restic: warning: Debian's restic is ${version}, older than ${MIN_VERSION.join('.')}; install Go to race the pinned ${RESTIC_VERSION}`);
  return { path: system, version, source: 'debian' };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'install') {
    const r = installRestic();
    console.error(`restic ${r.version} (${r.source === 'debian' ? "Debian's package" : `go install, pinned ${RESTIC_VERSION}`})`);
    console.log(r.path);
  } else {
    console.error('usage: node scripts/restic.mjs install');
    process.exit(2);
  }
}

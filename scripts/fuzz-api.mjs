#!/usr/bin/env node
// Fuzzes the running API from its own OpenAPI document with schemathesis (every check), bounded:
//   node scripts/fuzz-api.mjs install  -> the pinned schemathesis in .cache/fuzz-venv (idempotent)
//   node scripts/fuzz-api.mjs          -> install, start the local service (embedded backend, temporary
//                                         home, free port), run `st run` against it, stop everything;
//                                         exits non-zero on any schemathesis failure.
// FUZZ_MAX_EXAMPLES (default 40) and FUZZ_TIMEOUT_S (default 300, a hard stop that fails the run) bound it;
// FUZZ_SEED picks another seed; FUZZ_ST_ARGS adds `st run` arguments (e.g. "--include-path-regex volumes").
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPythonTool } from './python-tool.mjs';

export const SCHEMATHESIS_VERSION = '4.32.5';

export function installSchemathesis({ quiet = false } = {}) {
  return installPythonTool({ venv: 'fuzz-venv', requirement: `schemathesis==${SCHEMATHESIS_VERSION}`, version: SCHEMATHESIS_VERSION, bin: 'st', purpose: 'to fuzz the API (schemathesis)', quiet });
}

// The project and tokens come from the environment so that none appears on a command line. Every path's
// project_id is the service's own project: another project's paths all answer 404 before any route runs.
// Every token_id is a spare token's: revoking the token the run authenticates with would end it.
const CONFIG = `
headers = { "X-Auth-Token" = "\${OPENVBS_FUZZ_TOKEN}" }

[parameters]
"path.project_id" = "\${OPENVBS_FUZZ_PROJECT}"
"path.token_id" = "\${OPENVBS_FUZZ_SPARE_TOKEN_ID}"

[checks]
enabled = true

# Two request rules no OpenAPI schema states exactly, so these operations may answer a schema-valid request 400
# (their descriptions name the codes): a subscription's endpoint depends on its protocol (an email address, an
# E.164 number, or a URL of that scheme: OpenVBS.1701); a backup policy's time_zone may name any IANA zone and
# its weekdays come in any case, which only the zone database and the server know (OpenVBS.1801).
[[operations]]
include-path = ["/v1/{project_id}/subscriptions", "/v2/{project_id}/backuppolicy", "/v2/{project_id}/backuppolicy/{policy_id}"]
include-method = ["POST", "PUT"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
`;

// schemathesis closes on a pytest-style rule, e.g. `==== 2 warnings in 34.81s ====`. CI reads such a line as
// pytest's closing line, and one without a count of passed tests as "no test ran"; so its rules lose their fences.
const PYTEST_CLOSING_RULE = /^=+ (.+ in [0-9.]+s) =+$/;

/** Runs `st` in its own process group; resolves to its exit code. A run past `timeoutMs` is killed and fails. */
function runSchemathesis(stBin, args, { env, cwd, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(stBin, args, { stdio: ['ignore', 'pipe', 'inherit'], env, cwd, detached: true });
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      const closing = PYTEST_CLOSING_RULE.exec(line);
      process.stdout.write(closing ? `schemathesis ${closing[1]}\n` : `${line}\n`);
    });
    const killGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch { /* already gone */ }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`fuzz: schemathesis still running after ${timeoutMs / 1000} s; stopping it`);
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 5000).unref();
    }, timeoutMs);
    const onSignal = () => killGroup('SIGTERM');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    child.once('error', reject);
    // 'close', not 'exit': every line st printed is through the filter by then
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // whatever st left in its group goes with it
      killGroup('SIGKILL');
      resolve(timedOut ? 124 : (code ?? (signal ? 128 : 1)));
    });
  });
}

/** A token of the service's project for the run to revoke; its id. */
async function spareTokenId(service) {
  const res = await fetch(`${service.url}/v1/${service.projectId}/tokens`, {
    method: 'POST',
    headers: { 'X-Auth-Token': service.token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: { description: 'fuzz: may be revoked' } }),
  });
  if (res.status !== 201) throw new Error(`fuzz: could not issue a spare token (${res.status} ${await res.text()})`);
  return (await res.json()).token.id;
}

/**
 * Where the temporary home goes: tmpfs where there is one, since the fuzzer asks for volumes up to the API's
 * 64 TiB and ext4 holds sparse files only up to 16 TiB (the images are sparse: they take no room).
 */
const scratch = () => (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

async function fuzz() {
  const started = Date.now();
  const stBin = installSchemathesis({ quiet: true });
  const home = await mkdtemp(join(scratch(), 'openvbs-fuzz-'));
  // Jobs the stop cuts short keep writing until the process ends (lib/local/service.ts): the home goes then.
  process.once('exit', () => rmSync(home, { recursive: true, force: true }));
  // schemathesis reports every failure with the request that caused it; the service's own log would only
  // add the jobs cut short at the stop (set POWERTOOLS_LOG_LEVEL to see it)
  process.env.POWERTOOLS_LOG_LEVEL ??= 'CRITICAL';
  const { startLocalService } = await import('../lib/local/service.ts');
  let service;
  let code;
  try {
    service = await startLocalService({ home, backend: 'embedded', port: 0, workers: 1 });
    const configFile = join(home, 'schemathesis.toml');
    await writeFile(configFile, CONFIG, { mode: 0o600 });
    const maxExamples = process.env.FUZZ_MAX_EXAMPLES ?? '40';
    const timeoutMs = Number(process.env.FUZZ_TIMEOUT_S ?? 300) * 1000;
    const args = [
      '--config-file', configFile, '--no-color',
      'run', `${service.url}/openapi.json`,
      '--checks', 'all',
      '--max-examples', maxExamples,
      '--seed', process.env.FUZZ_SEED ?? '20260101',
      '--workers', '1',
      '--generation-database', 'none',
      ...(process.env.FUZZ_ST_ARGS ? process.env.FUZZ_ST_ARGS.split(' ') : []),
    ];
    const env = { ...process.env, OPENVBS_FUZZ_TOKEN: service.token, OPENVBS_FUZZ_PROJECT: service.projectId, OPENVBS_FUZZ_SPARE_TOKEN_ID: await spareTokenId(service) };
    // st keeps its own state in its working folder: the temporary home, not the repository
    code = await runSchemathesis(stBin, args, { env, cwd: home, timeoutMs });
  } finally {
    await service?.stop({ graceMs: 0 }).catch((err) => console.error(`fuzz: stopping the service: ${err.message}`));
  }
  console.log(`fuzz: schemathesis ${code === 0 ? 'passed' : `failed (exit ${code})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return code;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'install') {
    console.log(`schemathesis==${SCHEMATHESIS_VERSION} ready: ${installSchemathesis()}`);
  } else if (process.argv[2] === undefined) {
    // exit at once: nothing of the service's may outlive the run
    process.exit(await fuzz());
  } else {
    console.error('usage: node scripts/fuzz-api.mjs [install]');
    process.exitCode = 2;
  }
}

// What each deployed Lambda function costs to ship and to start: the stack synthesized as `cdk synth` builds it
// (esbuild bundles in a temporary cloud assembly), then per function the bytes of its asset folder (what Lambda
// unpacks; source maps included), of its handler file and of its chunk worker file, and the cold-start import:
// the median over BENCH_RUNS (default 5) fresh `node` processes, each started in the asset folder with the
// function's environment (NODE_OPTIONS=--enable-source-maps as deployed), of the time to import the bundle
// (measured inside the process) and of the wall time from spawn to imported.
//
//   node bench/bundles.ts            BENCH_RUNS=9 node bench/bundles.ts
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUNDLED_WORKER_FILE } from '../lib/engine/chunk-pool.ts';
import { LAMBDA_HOST } from '../test/support/bundled-lambdas.ts';
import type { DeployedFunction, Intrinsics } from '../test/support/deployed-stack.ts';
import { folderBytes, pseudoParameters, resolveEnvironment, synthesizeDeployedStack, vcpusFor } from '../test/support/deployed-stack.ts';
import type { HostReply } from '../test/support/lambda-host.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('BENCH_RUNS must be a positive integer');
const REGION = 'us-east-1';

/** One cold start: spawn, import the bundle, report; the process is then ended. */
function coldStart(fn: DeployedFunction, env: Record<string, string>): Promise<{ importMs: number; wallMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [LAMBDA_HOST, fn.entryFile, fn.exportName], { cwd: fn.assetDir, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('message', (msg: HostReply) => {
      const wallMs = performance.now() - started;
      child.kill('SIGKILL');
      if (msg.type === 'ready') resolve({ importMs: msg.importMs, wallMs });
      else reject(new Error(`${fn.handlerName}: import failed: ${msg.type === 'import-failed' ? msg.error.message : JSON.stringify(msg)}`));
    });
    child.on('exit', (code) => reject(new Error(`${fn.handlerName}: exited with ${code} before importing:\n${stderr}`)));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const kb = (bytes: number) => (bytes / 1024).toLocaleString('en-US', { maximumFractionDigits: 0 });

console.log(`Synthesizing with bundling (esbuild, as cdk synth) ...`);
const synthStarted = performance.now();
const stack = synthesizeDeployedStack();
console.log(`synthesized in ${((performance.now() - synthStarted) / 1000).toFixed(1)} s: ${stack.functions.size} functions; ${RUNS} cold starts each, Node ${process.version}\n`);

// Placeholder values for the environment: importing a bundle contacts nothing.
const values: Intrinsics = { refs: { ...pseudoParameters(REGION) }, attributes: {} };
for (const id of Object.keys(stack.template.Resources)) {
  values.refs[id] = `openvbs-bench-${id.toLowerCase()}`;
  values.attributes[`${id}.Arn`] = `arn:aws:bench:${REGION}:123456789012:${id}`;
}

type Row = { name: string; memory: number; vcpus: number; asset: number; main: number; worker: number; importMs: number; wallMs: number };
const rows: Row[] = [];
try {
  for (const fn of [...stack.functions.values()].sort((a, b) => a.handlerName.localeCompare(b.handlerName))) {
    const env = {
      ...resolveEnvironment(fn, values),
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_LAMBDA_FUNCTION_NAME: `OpenVbsStack-${fn.logicalId}`,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
      LAMBDA_TASK_ROOT: fn.assetDir,
      TZ: ':UTC',
      PATH: '/usr/local/bin:/usr/bin:/bin',
    };
    const samples: Array<{ importMs: number; wallMs: number }> = [];
    for (let i = 0; i < RUNS; i++) samples.push(await coldStart(fn, env));
    const workerFile = path.join(fn.assetDir, BUNDLED_WORKER_FILE);
    rows.push({
      name: fn.handlerName,
      memory: fn.memoryMb,
      vcpus: vcpusFor(fn.memoryMb),
      asset: folderBytes(fn.assetDir),
      main: fs.statSync(fn.entryFile).size,
      worker: fs.existsSync(workerFile) ? fs.statSync(workerFile).size : 0,
      importMs: median(samples.map((s) => s.importMs)),
      wallMs: median(samples.map((s) => s.wallMs)),
    });
  }
} finally {
  stack.dispose();
}

const header = ['function', 'memory MB', 'vCPUs', 'asset KiB', 'main file KiB', 'worker file KiB', 'import ms (median)', 'spawn to imported ms (median)'];
const table = rows.map((r) => [r.name, String(r.memory), String(r.vcpus), kb(r.asset), kb(r.main), r.worker ? kb(r.worker) : 'none', r.importMs.toFixed(0), r.wallMs.toFixed(0)]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
for (const row of table) console.log(line(row));
const total = rows.reduce((sum, r) => sum + r.asset, 0);
console.log(`\ntotal of all asset folders: ${kb(total)} KiB; import ms median over functions: ${median(rows.map((r) => r.importMs)).toFixed(0)}`);

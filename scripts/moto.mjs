#!/usr/bin/env node
// Local AWS emulator harness: moto in server mode, pinned, installed into a venv under .cache/.
//   node scripts/moto.mjs install   -> create the venv and install moto[server] (idempotent)
//   node scripts/moto.mjs serve     -> start moto on a free loopback port (or $MOTO_PORT) and print
//                                      AWS_ENDPOINT_URL=... ; runs until interrupted
// The same functions are imported by the vitest global setup and the local runtime.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { installPythonTool } from './python-tool.mjs';

export const MOTO_VERSION = '5.2.5';

export function installMoto({ quiet = false } = {}) {
  return installPythonTool({ venv: 'moto-venv', requirement: `moto[server]==${MOTO_VERSION}`, version: MOTO_VERSION, bin: 'moto_server', purpose: 'to run the local AWS emulator (moto)', quiet });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(endpoint, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto exited early with code ${child.exitCode}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.status < 500) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto did not come up on ${endpoint} within ${timeoutMs} ms`);
}

/** Starts moto on a loopback port; resolves to { endpoint, port, stop() }. */
export async function startMoto({ port, quiet = true } = {}) {
  const bin = installMoto({ quiet });
  const chosen = port ?? (await freePort());
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(chosen)], {
    stdio: quiet ? 'ignore' : ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  const endpoint = `http://127.0.0.1:${chosen}`;
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  try {
    await waitUntilUp(endpoint, child, 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, port: chosen, stop };
}

const command = process.argv[2];
if (import.meta.url === `file://${process.argv[1]}`) {
  if (command === 'install') {
    console.log(`moto[server]==${MOTO_VERSION} ready: ${installMoto()}`);
  } else if (command === 'serve') {
    const port = process.env.MOTO_PORT ? Number(process.env.MOTO_PORT) : undefined;
    const moto = await startMoto({ port, quiet: false });
    console.log(`AWS_ENDPOINT_URL=${moto.endpoint}`);
    const shutdown = () => moto.stop().then(() => process.exit(0));
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  } else {
    console.error('usage: node scripts/moto.mjs install|serve');
    process.exit(2);
  }
}

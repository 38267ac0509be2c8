#!/usr/bin/env node
// `openvbs` command (lib/cli). The CLI is TypeScript run as is, which needs a Node that strips types
// (22.18 and later by default). Under an older Node (the system Node 20, say) this re-runs itself with
// the repository's pinned Node (node_modules/.bin/node) when it is there, else says what to do.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REEXEC_MARK = 'OPENVBS_CLI_REEXEC';

if (process.features.typescript) {
  const { main } = await import('../lib/cli/main.ts');
  await main();
} else {
  const pinned = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
  if (process.env[REEXEC_MARK] || !existsSync(pinned)) {
    process.stderr.write(
      `error: openvbs needs Node.js 22.18 or later (this is ${process.version}); ` +
        'run it with the repository\'s Node (npx openvbs, or node_modules/.bin/node bin/openvbs.mjs) after `npm ci`\n',
    );
    process.exit(1);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC_MARK]: '1' },
  });
  // Ctrl-C reaches the child too (same process group); it decides what happens.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (err) => {
    process.stderr.write(`error: cannot start ${pinned}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners('SIGINT');
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}

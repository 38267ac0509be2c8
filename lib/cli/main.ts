// The `openvbs` process: real streams, environment and Ctrl-C around `run` (see run.ts).
import { run } from './run.ts';

const interrupt = new AbortController();
let waiting = false;
process.on('SIGINT', () => {
  // Ctrl-C during a wait stops waiting (the job goes on) and says how to resume; otherwise, or the
  // second time, it ends the process.
  if (!waiting || interrupt.signal.aborted) process.exit(130);
  interrupt.abort();
});
// Whatever escapes `run` (it should not) ends as one line, never a stack trace.
const fatal = (err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

process.exitCode = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
  onWaiting: (w) => {
    waiting = w;
  },
});

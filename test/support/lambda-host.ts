// One Lambda execution environment for a bundled handler: run as `node lambda-host.ts <bundle file> <export>`
// in the function's asset folder with the function's environment and nothing else, it imports the bundle
// (the cold start), then serves invocations sent over IPC one at a time as Lambda does, and reports every
// worker thread the bundle starts (the file it starts it from) and whether that file loaded.
// It imports nothing from the repository: what runs is the bundle alone.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { pathToFileURL } from 'node:url';
import type * as WorkerThreads from 'node:worker_threads';

export type HostRequest = { id: number; event: unknown };
export type HostWorker = { file: string; online: boolean; error?: string };
export type HostReply =
  | { type: 'ready'; importMs: number }
  | { type: 'import-failed'; error: { name: string; message: string; stack?: string } }
  | { type: 'result'; id: number; ok: true; result: unknown; workers: HostWorker[] }
  | { type: 'result'; id: number; ok: false; error: { name: string; message: string; stack?: string }; workers: HostWorker[] };

const [bundleFile, exportName] = process.argv.slice(2) as [string, string];
const send = (reply: HostReply) => process.send!(reply);
const plain = (err: unknown) => (err instanceof Error ? { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) } : { name: 'Error', message: String(err) });

// Worker threads the bundle starts: the ESM binding the bundle imports follows the CommonJS export once
// synced, so a subclass records each one without changing what it does.
const workers: HostWorker[] = [];
const threads = createRequire(import.meta.url)('node:worker_threads') as typeof WorkerThreads;
const BaseWorker = threads.Worker;
threads.Worker = class RecordedWorker extends BaseWorker {
  constructor(file: string | URL, options?: WorkerThreads.WorkerOptions) {
    const seen: HostWorker = { file: file instanceof URL ? file.href : String(file), online: false };
    workers.push(seen);
    super(file, options);
    this.once('online', () => (seen.online = true));
    this.once('error', (err) => (seen.error ??= err.message));
  }
};
syncBuiltinESMExports();

const started = performance.now();
let handler: (event: unknown, context: unknown) => Promise<unknown>;
try {
  const mod = (await import(pathToFileURL(bundleFile).href)) as Record<string, unknown>;
  if (typeof mod[exportName] !== 'function') throw new Error(`${bundleFile} exports no function "${exportName}"`);
  handler = mod[exportName] as typeof handler;
  send({ type: 'ready', importMs: performance.now() - started });
} catch (err) {
  send({ type: 'import-failed', error: plain(err) });
  process.exit(1);
}

const timeoutMs = Number(process.env.AWS_LAMBDA_FUNCTION_TIMEOUT ?? 900) * 1000;
process.on('message', (req: HostRequest) => {
  const deadline = Date.now() + timeoutMs;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: '$LATEST',
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: `local-${req.id}`,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  handler(req.event, context).then(
    (result) => send({ type: 'result', id: req.id, ok: true, result: result ?? null, workers }),
    (err: unknown) => send({ type: 'result', id: req.id, ok: false, error: plain(err), workers }),
  );
});
// The parent going away ends this environment too.
process.on('disconnect', () => process.exit(0));

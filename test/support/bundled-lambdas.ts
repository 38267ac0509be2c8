// Invokes bundled Lambda handlers as Lambda does: each function in its own execution environments (child
// processes of lambda-host.ts, started in the asset folder with the function's environment only), one
// invocation at a time per environment, a new environment (a cold start) when every one is busy. Errors come
// back with their name, as Step Functions sees a function's errorType.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostReply, HostWorker } from './lambda-host.ts';

export const LAMBDA_HOST = fileURLToPath(new URL('./lambda-host.ts', import.meta.url));

export interface BundledFunctionSpec {
  name: string;
  assetDir: string;
  entryFile: string;
  exportName: string;
  env: Record<string, string>;
}

/** The error a handler threw, by name and message. */
export class HandlerError extends Error {
  readonly handler: string;
  constructor(handler: string, error: { name: string; message: string; stack?: string }) {
    super(error.message);
    this.name = error.name;
    this.handler = handler;
    if (error.stack) this.stack = error.stack;
  }
}

interface Environment {
  child: ChildProcess;
  busy: boolean;
  /** What it printed last (for the message when it fails). */
  output: string[];
  importMs: number;
  workers: HostWorker[];
  waiting: Map<number, { resolve(v: unknown): void; reject(e: Error): void }>;
}

const KEEP_LINES = 40;

export class BundledLambdas {
  private readonly specs: Map<string, BundledFunctionSpec>;
  private readonly environments = new Map<string, Environment[]>();
  private nextId = 1;
  /** Every invocation, in order: [function name, event]. */
  readonly invocations: Array<[string, unknown]> = [];

  constructor(specs: BundledFunctionSpec[]) {
    this.specs = new Map(specs.map((s) => [s.name, s]));
  }

  async invoke(name: string, event: unknown): Promise<unknown> {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no bundled function ${name}`);
    this.invocations.push([name, event]);
    const envs = this.environments.get(name) ?? [];
    this.environments.set(name, envs);
    let env = envs.find((e) => !e.busy && e.child.exitCode === null);
    if (!env) {
      env = await this.start(spec);
      envs.push(env);
    }
    env.busy = true;
    const id = this.nextId++;
    try {
      return await new Promise((resolve, reject) => {
        env.waiting.set(id, { resolve, reject });
        env.child.send({ id, event });
      });
    } finally {
      env.busy = false;
    }
  }

  /** Cold-start import times (ms) of every environment started for a function. */
  importTimes(name: string): number[] {
    return (this.environments.get(name) ?? []).map((e) => e.importMs);
  }

  /** The worker threads each environment of a function has started so far. */
  workers(name: string): HostWorker[][] {
    return (this.environments.get(name) ?? []).map((e) => e.workers);
  }

  /** Ends every environment of one function (the next invocation starts cold, e.g. with another environment). */
  async stop(name: string): Promise<void> {
    const envs = this.environments.get(name) ?? [];
    this.environments.delete(name);
    await Promise.all(envs.map((e) => stopChild(e.child)));
  }

  /** Changes a function's environment; running environments are ended first. */
  async reconfigure(name: string, env: Record<string, string>): Promise<void> {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no bundled function ${name}`);
    await this.stop(name);
    this.specs.set(name, { ...spec, env });
  }

  async close(): Promise<void> {
    await Promise.all([...this.environments.keys()].map((name) => this.stop(name)));
  }

  private start(spec: BundledFunctionSpec): Promise<Environment> {
    const child = spawn(process.execPath, [LAMBDA_HOST, spec.entryFile, spec.exportName], {
      cwd: spec.assetDir,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const env: Environment = { child, busy: false, output: [], importMs: 0, workers: [], waiting: new Map() };
    const keep = (chunk: Buffer) => {
      env.output.push(...chunk.toString().split('\n').filter(Boolean));
      if (env.output.length > KEEP_LINES) env.output.splice(0, env.output.length - KEEP_LINES);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const died = () => new Error(`${spec.name}: its environment exited (code ${child.exitCode}, signal ${child.signalCode}); last output:\n${env.output.join('\n')}`);
    return new Promise((resolve, reject) => {
      child.on('message', (msg: HostReply) => {
        if (msg.type === 'ready') {
          env.importMs = msg.importMs;
          resolve(env);
        } else if (msg.type === 'import-failed') {
          reject(new Error(`${spec.name}: importing ${spec.entryFile} failed: ${msg.error.stack ?? msg.error.message}`));
        } else {
          env.workers = msg.workers;
          const waiter = env.waiting.get(msg.id);
          env.waiting.delete(msg.id);
          if (msg.ok) waiter?.resolve(msg.result);
          else waiter?.reject(new HandlerError(spec.name, msg.error));
        }
      });
      child.on('exit', () => {
        reject(died());
        for (const waiter of env.waiting.values()) waiter.reject(died());
        env.waiting.clear();
      });
      child.on('error', reject);
    });
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

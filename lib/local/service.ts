// The local runtime: the service on one machine. It takes the home folder (one instance per home),
// opens the backend (embedded by default: SQLite, files and key files under the home; or `aws`, against
// AWS_ENDPOINT_URL or real AWS), runs the CDK app's state machines in-process with each Lambda task
// calling its handler module, resumes what a previous run left unfinished, and serves the same API app
// the Lambda serves on a Node HTTP server. A start never deletes anything.
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createApiApp } from '../api/app.ts';
import { awsClients } from '../aws/clients.ts';
import { TableExecutionStore } from '../catalog/executions.ts';
import type { BackendKind, ServiceConfig } from '../config.ts';
import { createServices, quotasFromEnv } from '../service/factory.ts';
import type { Services } from '../service/factory.ts';
import { installProcessRuntime, openRuntime } from '../wiring/runtime.ts';
import type { Runtime, RuntimeOptions } from '../wiring/runtime.ts';
import { WORKFLOW_NAMES } from '../workflows/registry.ts';
import type { HandlerName, WorkflowName } from '../workflows/registry.ts';
import { failEndedExecution } from '../workflows/steps/execution-failed.ts';
import { synthesizeTemplate, workflowDefinitions } from '../../infra/synth.ts';
import type { HomeLock } from './home.ts';
import { defaultHome, lockHome, readConnection, writeConnection } from './home.ts';
import { LocalWorkflows, localStateMachine } from './local-workflows.ts';
import type { LocalStateMachine } from './local-workflows.ts';
import { provisionLocalResources } from './provision.ts';
import { recoverInterrupted } from './recovery.ts';
import type { RecoveryReport } from './recovery.ts';

export interface LocalServiceOptions {
  /** Data folder; default OPENVBS_HOME, else `.openvbs/` in the repository. */
  home?: string;
  /** Default OPENVBS_BACKEND, else `embedded`. */
  backend?: BackendKind;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Resource name prefix with the `aws` backend. */
  prefix?: string;
  /** Chunk worker threads; default one per core. */
  workers?: number;
  /** Disks of one server backup or restore processed at once; default OPENVBS_DISK_CONCURRENCY, else 4. */
  diskConcurrency?: number;
  /** The home's lock, when the caller took it already (the entry point takes it before loading anything). */
  lock?: HomeLock;
  /** Wraps the object store the workflow steps use (tests inject storage faults here). */
  wrapStore?: RuntimeOptions['wrapStore'];
  /** Wraps each workflow step's handler (tests inject step faults here). */
  wrapHandler?: (name: HandlerName, handler: Handler) => Handler;
}

export interface LocalService {
  url: string;
  projectId: string;
  token: string;
  home: string;
  backend: BackendKind;
  runtime: Runtime;
  workflows: LocalWorkflows;
  /** What the start did about the previous run's unfinished jobs. */
  recovered: RecoveryReport;
  /**
   * Stops taking requests and new jobs, waits up to `graceMs` (default 10 s) for running jobs, and lets go of
   * the home. Jobs still running then are cut at their next state and resumed by the next start.
   */
  stop(options?: { graceMs?: number }): Promise<{ finished: boolean }>;
}

/** The port is taken by another program. */
export class PortInUseError extends Error {
  override name = 'PortInUseError';
}

export type Handler = (event: unknown) => Promise<unknown>;

const loadHandler = async (name: HandlerName): Promise<Handler> => {
  const mod = (await import(`../../functions/${name}.ts`)) as { handler: Handler };
  return mod.handler;
};

async function serviceConfig(backend: BackendKind, home: string, prefix: string): Promise<ServiceConfig> {
  if (backend === 'embedded') return { backend, home };
  // Creates the bucket, tables, key and topic if absent (idempotent) wherever the SDK points.
  return provisionLocalResources(awsClients(), prefix);
}

/** Runs the policy tick every `seconds` (one pass at a time); returns how to stop it (waits for a pass under way). */
function startPolicyTimer(services: Services, seconds: number): () => Promise<void> {
  if (!(seconds > 0)) return async () => undefined;
  let pass: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    pass ??= services.policies
      .tickAll()
      .catch((err: unknown) => process.stderr.write(`policy tick failed: ${err instanceof Error ? err.message : String(err)}\n`))
      .finally(() => (pass = undefined));
  }, seconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await pass;
  };
}

export async function startLocalService(options: LocalServiceOptions = {}): Promise<LocalService> {
  const home = options.home ?? defaultHome();
  const backend = options.backend ?? ((process.env.OPENVBS_BACKEND as BackendKind | undefined) || 'embedded');
  if (backend !== 'embedded' && backend !== 'aws') throw new Error(`OPENVBS_BACKEND must be embedded or aws, not "${String(backend)}"`);
  const lock: HomeLock = options.lock ?? (await lockHome(home));
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(await serviceConfig(backend, home, options.prefix ?? 'openvbs'), {
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.wrapStore ? { wrapStore: options.wrapStore } : {}),
    });
    installProcessRuntime(runtime);
    const { stores } = runtime;

    const diskConcurrency = options.diskConcurrency ?? (process.env.OPENVBS_DISK_CONCURRENCY ? Number(process.env.OPENVBS_DISK_CONCURRENCY) : undefined);
    const definitions = workflowDefinitions(synthesizeTemplate({ bundling: false, ...(diskConcurrency !== undefined ? { diskConcurrency } : {}) }));
    const machines = Object.fromEntries(WORKFLOW_NAMES.map((w) => [w, localStateMachine(definitions[w])])) as Record<WorkflowName, LocalStateMachine>;
    const tasks = runtime.taskDeps();
    // An execution that fails or is stopped runs its workflow's failure path, as the EventBridge rule makes it on
    // AWS (a job its own failure path already ended is left alone).
    const { wrapHandler } = options;
    const handlerOf = wrapHandler ? async (name: HandlerName) => wrapHandler(name, await loadHandler(name)) : loadHandler;
    const workflows = new LocalWorkflows(machines, handlerOf, new TableExecutionStore(runtime.backend.table), async (workflow, _name, input, ended) => {
      await failEndedExecution(tasks, { workflow, input, ...ended }).catch(() => undefined);
    });
    await workflows.warm();

    const recovered = await recoverInterrupted({
      executions: new TableExecutionStore(runtime.backend.table),
      jobs: stores.jobs,
      volumes: stores.volumes,
      tasks,
      resume: (workflow, name, input) => workflows.resume(workflow, name, input),
    });

    const services = createServices({ stores, keys: runtime.backend.keys, workflows, provider: runtime.volumes, dataDir: home, quotas: quotasFromEnv(), ...(runtime.backend.subscriptions ? { subscriptionManager: runtime.backend.subscriptions } : {}), ...(runtime.backend.notifier ? { notifier: runtime.backend.notifier } : {}) });
    const host = options.host ?? '127.0.0.1';
    const server = serve({ fetch: createApiApp(services).fetch, hostname: host, port: options.port ?? 8080 });
    await new Promise<void>((ok, fail) => {
      server.once('listening', () => ok());
      server.once('error', (err: NodeJS.ErrnoException) => {
        fail(err.code === 'EADDRINUSE' ? new PortInUseError(`port ${options.port ?? 8080} on ${host} is already in use; set PORT to another one`) : err);
      });
    });
    const url = `http://${host}:${(server.address() as AddressInfo).port}`;

    // The first start creates a project and a token; later starts keep them.
    const known = await readConnection(home);
    const stillValid = known && (await stores.tokens.resolve(known.token))?.projectId === known.project_id;
    const projectId = stillValid ? known.project_id : randomBytes(16).toString('hex');
    const token = stillValid ? known.token : (await stores.tokens.issue(projectId, 'local runtime default')).token;
    await writeConnection(home, { url, project_id: projectId, token });

    // The policy tick on a timer, as the periodic rule runs it on AWS (OPENVBS_TICK_SECONDS, default 60; 0: off).
    const stopTicking = startPolicyTimer(services, Number(process.env.OPENVBS_TICK_SECONDS ?? 60));
    const live = runtime;
    return {
      url,
      projectId,
      token,
      home,
      backend,
      runtime: live,
      workflows,
      recovered,
      async stop(stopOptions = {}) {
        const closed = new Promise<void>((ok) => {
          server.close(() => ok());
          // idle keep-alive connections would hold close() open
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
        await stopTicking();
        const outcome = await workflows.shutdown(stopOptions.graceMs ?? 10_000);
        await closed;
        installProcessRuntime(undefined);
        // Handlers cut short may still be writing: the adapters stay open for them until the process ends.
        if (outcome.finished) await live.close();
        lock.release();
        return outcome;
      },
    };
  } catch (err) {
    installProcessRuntime(undefined);
    await runtime?.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}

// The local runtime: the emulator, the service's resources on it, the CDK app's state machines run
// in-process, and the same API app the Lambda serves, on a Node HTTP server.
//
// State lives in the emulator's memory, so it does not survive a restart: each start begins clean
// (managed volume images of the previous run are removed with it, so nothing is half-remembered).
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createClients } from '../aws/clients.ts';
import { serviceConfigEnv } from '../config.ts';
import { provisionLocalResources } from './provision.ts';
import { extractStateMachines } from './state-machines.ts';
import type { CfnTemplate } from './state-machines.ts';
import { LocalWorkflows } from './local-workflows.ts';
import { taskDeps } from '../workflows/runtime.ts';
import { synthesizeTemplate } from '../../infra/synth.ts';
import { createVbsService } from '../service/factory.ts';
import { createApiApp } from '../api/app.ts';
import { startMoto } from '../../scripts/moto.mjs';

export interface LocalServiceOptions {
  /** Data folder; default `.openvbs/` in the repository (OPENVBS_HOME). */
  home?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Use this emulator instead of starting one. */
  awsEndpoint?: string;
  /** Resource name prefix on the emulator. */
  prefix?: string;
}

export interface LocalService {
  url: string;
  projectId: string;
  token: string;
  awsEndpoint: string;
  workflows: LocalWorkflows;
  env: Record<string, string>;
  stop(): Promise<void>;
}

const repoRoot = resolve(import.meta.dirname, '..', '..');

export async function startLocalService(options: LocalServiceOptions = {}): Promise<LocalService> {
  const home = resolve(options.home ?? process.env.OPENVBS_HOME ?? join(repoRoot, '.openvbs'));
  await rm(join(home, 'volumes'), { recursive: true, force: true });
  await mkdir(join(home, 'volumes'), { recursive: true });

  const moto = options.awsEndpoint ? undefined : await startMoto({ quiet: true });
  const awsEndpoint = options.awsEndpoint ?? moto!.endpoint;
  const awsEnv: Record<string, string> = {
    AWS_ENDPOINT_URL: awsEndpoint,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
  };
  Object.assign(process.env, awsEnv);
  const clients = createClients();
  try {
    const config = await provisionLocalResources(clients, options.prefix ?? 'openvbs');
    // The handlers read their configuration from the environment, as on Lambda.
    const env = { ...awsEnv, ...serviceConfigEnv(config) };
    Object.assign(process.env, env);

    const template = synthesizeTemplate({ bundling: false }) as CfnTemplate;
    const workflows = new LocalWorkflows(extractStateMachines(template), async (name) => {
      const mod = (await import(`../../functions/${name}.ts`)) as { handler: (event: unknown) => Promise<unknown> };
      return mod.handler;
    });
    await workflows.warm();
    taskDeps(); // build the handlers' clients and chunk pool now, not inside the first job
    const service = createVbsService({ config, clients, workflows, dataDir: home });
    const app = createApiApp(service);
    const server = serve({ fetch: app.fetch, hostname: options.host ?? '127.0.0.1', port: options.port ?? 8080 });
    await new Promise<void>((ok, fail) => {
      server.once('listening', () => ok());
      server.once('error', fail);
    });
    const address = server.address() as AddressInfo;
    const url = `http://${options.host ?? '127.0.0.1'}:${address.port}`;
    const projectId = randomBytes(16).toString('hex');
    const { token } = await service.createToken(projectId, 'local runtime default');
    return {
      url,
      projectId,
      token,
      awsEndpoint,
      workflows,
      env,
      async stop() {
        await new Promise<void>((ok) => {
          server.close(() => ok());
          // idle keep-alive connections would hold close() open
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
        await workflows.idle();
        await moto?.stop();
      },
    };
  } catch (err) {
    await moto?.stop();
    throw err;
  }
}

// A process runtime on either backend, for tests: the embedded one in a temporary home, or the AWS one on
// the run's emulator with freshly provisioned, uniquely named resources. Built by the same composition
// root as the Lambda handlers and the local runtime (lib/wiring/runtime.ts).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients } from '../../lib/aws/clients.ts';
import type { BackendKind, ServiceConfig } from '../../lib/config.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';
import { openRuntime } from '../../lib/wiring/runtime.ts';
import type { RuntimeOptions } from '../../lib/wiring/runtime.ts';

/** Every backend: suites that must hold on both run `describe.each(BACKENDS)`. */
export const BACKENDS: readonly BackendKind[] = ['embedded', 'aws'];

export async function testConfig(backend: BackendKind, dir: string): Promise<ServiceConfig> {
  if (backend === 'embedded') return { backend, home: join(dir, 'home') };
  return provisionLocalResources(createClients(), `t${randomBytes(5).toString('hex')}`);
}

export async function createRuntimeEnv(backend: BackendKind, options: Omit<RuntimeOptions, 'clients'> = {}) {
  const dir = await mkdtemp(join(tmpdir(), `openvbs-${backend}-`));
  const config = await testConfig(backend, dir);
  const runtime = await openRuntime(config, { workers: 1, ...options });
  return {
    dir,
    config,
    runtime,
    stores: runtime.stores,
    backend: runtime.backend,
    path: (name: string) => join(dir, name),
    async close() {
      await runtime.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type RuntimeEnv = Awaited<ReturnType<typeof createRuntimeEnv>>;

// An engine wired to the run's emulator with freshly provisioned, uniquely named resources, and
// file volumes registered by id in a map.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients } from '../../lib/aws/clients.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { EngineConfig } from '../../lib/engine/engine.ts';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { createEngineDeps } from '../../lib/engine/wiring.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import type { FileVolume } from '../../lib/volumes/file-provider.ts';

export async function createEngineEnv(options: { engine?: Partial<EngineConfig>; workers?: number } = {}) {
  const clients = createClients();
  const config = await provisionLocalResources(clients, `t${randomBytes(5).toString('hex')}`);
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-test-'));
  const volumes = new Map<string, FileVolume>();
  const provider = new FileVolumeProvider(async (projectId, volumeId) => volumes.get(`${projectId}/${volumeId}`));
  const pool = new ChunkPool({ workers: options.workers ?? 2 });
  const build = (wrapStore?: (s: ObjectStore) => ObjectStore) =>
    createEngineDeps({ config, clients, volumes: provider, pool, engine: options.engine, wrapStore });
  return {
    clients,
    config,
    dir,
    pool,
    deps: build(),
    /** Engine deps whose object store is wrapped (failure injection). */
    withStore: build,
    path: (name: string) => join(dir, name),
    addVolume(projectId: string, volumeId: string, volume: FileVolume) {
      volumes.set(`${projectId}/${volumeId}`, volume);
    },
    async close() {
      await pool.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type EngineEnv = Awaited<ReturnType<typeof createEngineEnv>>;

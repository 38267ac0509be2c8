// An engine on either backend (see runtime-env.ts), with file volumes registered by id in a map.
import type { BackendKind } from '../../lib/config.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { EngineConfig } from '../../lib/engine/engine.ts';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import type { FileVolume } from '../../lib/volumes/file-provider.ts';
import { createEngineDeps } from '../../lib/wiring/engine.ts';
import { createRuntimeEnv } from './runtime-env.ts';

export async function createEngineEnv(backend: BackendKind, options: { engine?: Partial<EngineConfig>; workers?: number } = {}) {
  const env = await createRuntimeEnv(backend);
  const volumes = new Map<string, FileVolume>();
  const provider = new FileVolumeProvider(async (projectId, volumeId) => volumes.get(`${projectId}/${volumeId}`));
  const pool = new ChunkPool({ workers: options.workers ?? 2 });
  const build = (wrapStore?: (s: ObjectStore) => ObjectStore) =>
    createEngineDeps({ backend: env.backend, backups: env.stores.backups, volumes: provider, pool, ...(options.engine ? { engine: options.engine } : {}), ...(wrapStore ? { wrapStore } : {}) });
  return {
    ...env,
    pool,
    deps: build(),
    /** Engine deps whose object store is wrapped (failure injection). */
    withStore: build,
    addVolume(projectId: string, volumeId: string, volume: FileVolume) {
      volumes.set(`${projectId}/${volumeId}`, volume);
    },
    async close() {
      await pool.close();
      await env.close();
    },
  };
}

export type EngineEnv = Awaited<ReturnType<typeof createEngineEnv>>;

// The VolumeProvider contract on the local provider: servers and volumes of the local inventory over a real
// SQLite catalog (embedded backend), sparse image files and snapshot copies in a temporary folder, a customer
// key from the local key service. Live disks are written directly (writeDisk), so the suite snapshots them.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCatalogStores } from '../../lib/catalog/stores.ts';
import { LocalKeyService } from '../../lib/embedded/local-key-service.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';
import { VolumeInventory } from '../../lib/volumes/inventory.ts';
import { LocalVolumeProvider } from '../../lib/volumes/local-provider.ts';
import { ServerInventory } from '../../lib/volumes/servers.ts';
import { BLOCK, volumeProviderContract } from '../support/volume-provider-contract.ts';
import type { ProviderFixture } from '../support/volume-provider-contract.ts';

volumeProviderContract('LocalVolumeProvider (local inventory, image files)', async (): Promise<ProviderFixture> => {
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-local-provider-'));
  const table = new SqliteTable(join(dir, 'catalog.db'));
  const stores = createCatalogStores(table);
  const keys = new LocalKeyService(join(dir, 'keys'));
  const dataDir = join(dir, 'data');
  const volumes = new VolumeInventory({ volumes: stores.volumes, keys, dataDir, allowPathRegistration: false });
  const servers = new ServerInventory({ servers: stores.servers, volumes: stores.volumes, allowHooks: false });
  const provider = new LocalVolumeProvider({ volumes: stores.volumes, servers: stores.servers, dataDir });
  const projectId = randomBytes(16).toString('hex');
  const customerKey = (await keys.createKey({ owner: projectId, alias: 'alias/contract' })).keyId;
  return {
    provider,
    projectId,
    sizeUnitBytes: 8 * BLOCK,
    changedBlocks: 'none',
    async createServer(disks, status) {
      const made = [];
      for (const [i, d] of disks.entries()) {
        made.push(await volumes.create(projectId, { name: `disk-${i}`, sizeBytes: d.sizeBytes, ...(d.encrypted ? { kmsKeyId: customerKey } : {}) }));
      }
      const server = await servers.create(projectId, { name: `server-${randomBytes(3).toString('hex')}`, status: status === 'stopped' ? 'stopped' : 'running', disks: made.map((v) => ({ volumeId: v.volumeId })) });
      return {
        serverId: server.serverId,
        disks: made.map((v) => ({ volumeId: v.volumeId, sizeBytes: v.sizeBytes, ...(v.kmsKeyId ? { kmsKeyId: v.kmsKeyId } : {}) })),
      };
    },
    async writeDisk(volumeId, offset, data) {
      const fh = await open((await volumes.get(projectId, volumeId)).path, 'r+');
      try {
        await fh.write(data, 0, data.length, offset);
      } finally {
        await fh.close();
      }
    },
    async restoredSource(_serverId, volumeId) {
      return { volumeId };
    },
    async close() {
      table.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// The adapters every contract suite runs against: DynamoDB on the run's emulator (a freshly provisioned,
// uniquely named set of tables per suite) and SQLite on a file in a fresh temporary folder.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients } from '../../lib/aws/clients.ts';
import { DynamoChunkIndex } from '../../lib/aws/dynamo-chunk-index.ts';
import { DynamoTable } from '../../lib/aws/dynamo-table.ts';
import type { Table } from '../../lib/catalog/table.ts';
import { SqliteChunkIndex } from '../../lib/embedded/sqlite-chunk-index.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';
import type { ChunkIndex } from '../../lib/engine/ports.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';

export interface Opened<T> {
  subject: T;
  close(): Promise<void>;
}

export interface Adapter<T> {
  name: string;
  open(): Promise<Opened<T>>;
}

async function provision() {
  const clients = createClients();
  return { clients, config: await provisionLocalResources(clients, `c${randomBytes(5).toString('hex')}`) };
}

export async function tempDir(): Promise<{ path: (name: string) => string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'openvbs-contract-'));
  return { path: (name) => join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) };
}

export const TABLE_ADAPTERS: Adapter<Table>[] = [
  {
    name: 'DynamoTable',
    async open() {
      const { clients, config } = await provision();
      return { subject: new DynamoTable(clients.ddb, config.catalogTable), close: async () => {} };
    },
  },
  {
    name: 'SqliteTable',
    async open() {
      const dir = await tempDir();
      const table = new SqliteTable(dir.path('catalog.db'));
      return {
        subject: table,
        async close() {
          table.close();
          await dir.remove();
        },
      };
    },
  },
];

export const CHUNK_INDEX_ADAPTERS: Adapter<ChunkIndex>[] = [
  {
    name: 'DynamoChunkIndex',
    async open() {
      const { clients, config } = await provision();
      return { subject: new DynamoChunkIndex(clients.ddb, config.chunkTable), close: async () => {} };
    },
  },
  {
    name: 'SqliteChunkIndex',
    async open() {
      const dir = await tempDir();
      const index = new SqliteChunkIndex(dir.path('chunks.db'));
      return {
        subject: index,
        async close() {
          index.close();
          await dir.remove();
        },
      };
    },
  },
];

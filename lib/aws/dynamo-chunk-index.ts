// ChunkIndex on DynamoDB.
//
// Table `chunks` (OPENVBS_CHUNK_TABLE): partition key `pk` (S) = "<domainId>#<chunk id hex>", no sort key.
// Attributes: pack (S, pack object key), off (N), len (N), at (N, epoch ms first written).
// One item per stored chunk; the hash-spread key keeps hot domains from concentrating on one partition.
// Lookups use strongly consistent BatchGetItem (100 keys), writes BatchWriteItem (25 items), both retrying
// unprocessed items.
import { BatchGetCommand, BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ChunkIndex, ChunkLocation } from '../engine/ports.ts';
import { backoffMs, chunked, mapLimit, sleep } from '../util/concurrency.ts';

const MAX_ATTEMPTS = 10;

export class DynamoChunkIndex implements ChunkIndex {
  private readonly ddb: DynamoDBDocumentClient;
  readonly table: string;
  private readonly concurrency: number;

  constructor(ddb: DynamoDBDocumentClient, table: string, concurrency = 8) {
    this.ddb = ddb;
    this.table = table;
    this.concurrency = concurrency;
  }

  async lookup(domainId: string, ids: string[]): Promise<Map<string, ChunkLocation>> {
    const found = new Map<string, ChunkLocation>();
    const unique = [...new Set(ids)];
    await mapLimit(chunked(unique, 100), this.concurrency, async (batch) => {
      let keys: Record<string, unknown>[] = batch.map((id) => ({ pk: `${domainId}#${id}` }));
      for (let attempt = 0; keys.length > 0; attempt++) {
        if (attempt >= MAX_ATTEMPTS) throw new Error(`chunk index lookup: ${keys.length} keys still unprocessed`);
        if (attempt > 0) await sleep(backoffMs(attempt));
        // Strongly consistent: a restore must find every chunk its manifest names, also right after the backup.
        const res = await this.ddb.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of res.Responses?.[this.table] ?? []) {
          const id = String(item.pk).slice(domainId.length + 1);
          found.set(id, { pack: item.pack, offset: Number(item.off), length: Number(item.len) });
        }
        keys = (res.UnprocessedKeys?.[this.table]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    });
    return found;
  }

  async record(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>): Promise<void> {
    const now = Date.now();
    await mapLimit(chunked(entries, 25), this.concurrency, async (batch) => {
      let requests: Array<Record<string, unknown>> = batch.map(({ id, location }) => ({
        PutRequest: { Item: { pk: `${domainId}#${id}`, pack: location.pack, off: location.offset, len: location.length, at: now } },
      }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt >= MAX_ATTEMPTS) throw new Error(`chunk index write: ${requests.length} items still unprocessed`);
        if (attempt > 0) await sleep(backoffMs(attempt));
        const res = await this.ddb.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
        requests = (res.UnprocessedItems?.[this.table] as Array<Record<string, unknown>> | undefined) ?? [];
      }
    });
  }
}

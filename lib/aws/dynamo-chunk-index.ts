// ChunkIndex on DynamoDB.
//
// Table `chunks` (OPENVBS_CHUNK_TABLE): partition key `pk` (S) = "<domainId>#<chunk id hex>", no sort key.
// Attributes: pack (S, pack object key), off (N), len (N), at (N, epoch ms first written), mark (N, set by GC on
// an unreferenced entry; a record replaces the whole item and so clears it).
// One item per stored chunk; the hash-spread key keeps hot domains from concentrating on one partition.
// Lookups use strongly consistent BatchGetItem (100 keys), writes BatchWriteItem (25 items), both retrying
// unprocessed items.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DeleteCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IdRange, IndexEntry, IndexMaintenance } from '../engine/gc-index.ts';
import type { ChunkIndex, ChunkLocation } from '../engine/ports.ts';
import { backoffMs, chunked, mapLimit, sleep } from '../util/concurrency.ts';

const MAX_ATTEMPTS = 10;

export class DynamoChunkIndex implements ChunkIndex, IndexMaintenance {
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
          found.set(id, { pack: item.pack, offset: Number(item.off), length: Number(item.len), ...(item.mark !== undefined ? { marked: Number(item.mark) } : {}) });
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

  async *scanDomain(domainId: string, range: IdRange = {}): AsyncIterable<IndexEntry[]> {
    // The table has no per-domain index: a Scan reads every item and the filter keeps this domain's (and range's).
    const prefix = `${domainId}#`;
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new ScanCommand({
          TableName: this.table,
          ConsistentRead: true,
          FilterExpression: 'pk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':from': prefix + (range.from ?? ''), ':to': prefix + (range.to ?? 'g') },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      const page: IndexEntry[] = [];
      for (const item of res.Items ?? []) {
        const id = String(item.pk).slice(prefix.length);
        if (range.to !== undefined && id >= range.to) continue; // BETWEEN includes its upper bound
        page.push({ id, pack: item.pack, offset: Number(item.off), length: Number(item.len), ...(item.mark !== undefined ? { mark: Number(item.mark) } : {}) });
      }
      if (page.length) yield page;
      start = res.LastEvaluatedKey;
    } while (start);
  }

  async markEntries(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>, mark: number): Promise<number> {
    return this.conditional(entries, (e) =>
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: `${domainId}#${e.id}` },
        UpdateExpression: 'SET #mark = :mark',
        ConditionExpression: 'attribute_not_exists(#mark) AND #pack = :pack AND #off = :off',
        ExpressionAttributeNames: { '#mark': 'mark', '#pack': 'pack', '#off': 'off' },
        ExpressionAttributeValues: { ':mark': mark, ':pack': e.location.pack, ':off': e.location.offset },
      }),
    );
  }

  async unmarkEntries(domainId: string, entries: Array<{ id: string; mark: number }>): Promise<number> {
    return this.conditional(entries, (e) =>
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: `${domainId}#${e.id}` },
        UpdateExpression: 'REMOVE #mark',
        ConditionExpression: '#mark = :mark',
        ExpressionAttributeNames: { '#mark': 'mark' },
        ExpressionAttributeValues: { ':mark': e.mark },
      }),
    );
  }

  async deleteEntries(domainId: string, entries: Array<{ id: string; mark: number }>): Promise<number> {
    return this.conditional(entries, (e) =>
      new DeleteCommand({
        TableName: this.table,
        Key: { pk: `${domainId}#${e.id}` },
        ConditionExpression: '#mark = :mark',
        ExpressionAttributeNames: { '#mark': 'mark' },
        ExpressionAttributeValues: { ':mark': e.mark },
      }),
    );
  }

  async moveEntries(domainId: string, moves: Array<{ id: string; from: ChunkLocation; to: ChunkLocation }>): Promise<number> {
    return this.conditional(moves, (m) =>
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: `${domainId}#${m.id}` },
        UpdateExpression: 'SET #pack = :to, #off = :toOff, #len = :toLen',
        ConditionExpression: '#pack = :from AND #off = :fromOff',
        ExpressionAttributeNames: { '#pack': 'pack', '#off': 'off', '#len': 'len' },
        ExpressionAttributeValues: { ':to': m.to.pack, ':toOff': m.to.offset, ':toLen': m.to.length, ':from': m.from.pack, ':fromOff': m.from.offset },
      }),
    );
  }

  /** One conditional write per item (conditions do not batch); counts those whose condition held. */
  private async conditional<T>(items: T[], command: (item: T) => UpdateCommand | DeleteCommand): Promise<number> {
    let changed = 0;
    await mapLimit(items, this.concurrency, async (item) => {
      try {
        await this.ddb.send(command(item) as UpdateCommand);
        changed++;
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
    });
    return changed;
  }
}

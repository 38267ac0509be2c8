// The catalog table port on DynamoDB (table design in lib/catalog/tables.ts). Conditions become
// ConditionExpressions, updates UpdateExpressions, and every attribute name and value goes through a
// placeholder. Reads of the table are strongly consistent; index reads cannot be.
import { ConditionalCheckFailedException, TransactionCanceledException, TransactionConflictException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  ConditionFailedError,
  TransactionConflictError,
  assertValidCondition,
  assertValidQuery,
  assertValidTransaction,
  decodeCursor,
  encodeCursor,
  opKey,
  updateChanges,
} from '../catalog/table.ts';
import type { Condition, Item, ItemKey, Page, QuerySpec, SortKeyRange, Table, UpdateSpec, WriteOp } from '../catalog/table.ts';
import { CATALOG_INDEXES, CATALOG_KEYS } from '../catalog/tables.ts';

/** Placeholders of one request: `#n<i>` for names, `:v<i>` for values. */
class Placeholders {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly nameIds = new Map<string, string>();

  name(attr: string): string {
    let id = this.nameIds.get(attr);
    if (!id) {
      id = `#n${this.nameIds.size}`;
      this.nameIds.set(attr, id);
      this.names[id] = attr;
    }
    return id;
  }

  value(value: unknown): string {
    const id = `:v${Object.keys(this.values).length}`;
    this.values[id] = withoutUndefined(value);
    return id;
  }

  /** The ExpressionAttributeNames/Values of a request (DynamoDB refuses empty maps). */
  request() {
    return {
      ...(this.nameIds.size ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

function conditionExpression(condition: Condition, p: Placeholders): string {
  switch (condition.op) {
    case 'exists':
      return `attribute_exists(${p.name(CATALOG_KEYS.partitionKey)})`;
    case 'notExists':
      return `attribute_not_exists(${p.name(CATALOG_KEYS.partitionKey)})`;
    case 'in':
      return `${p.name(condition.attr)} IN (${condition.values.map((v) => p.value(v)).join(', ')})`;
    case 'notIn': {
      const name = p.name(condition.attr);
      return `attribute_not_exists(${name}) OR NOT (${name} IN (${condition.values.map((v) => p.value(v)).join(', ')}))`;
    }
    case 'absent':
      return `attribute_not_exists(${p.name(condition.attr)})`;
    case 'and':
      // AND binds tighter than OR and is associative: only an OR inside needs parentheses (DynamoDB refuses
      // redundant ones).
      return condition.all.map((c) => (c.op === 'notIn' ? `(${conditionExpression(c, p)})` : conditionExpression(c, p))).join(' AND ');
  }
}

function updateExpression(spec: UpdateSpec, p: Placeholders): string {
  const { set, remove, add } = updateChanges(spec);
  const clauses: string[] = [];
  if (set.length) clauses.push(`SET ${set.map(([attr, value]) => `${p.name(attr)} = ${p.value(value)}`).join(', ')}`);
  if (remove.length) clauses.push(`REMOVE ${remove.map((attr) => p.name(attr)).join(', ')}`);
  if (add.length) clauses.push(`ADD ${add.map(([attr, n]) => `${p.name(attr)} ${p.value(n)}`).join(', ')}`);
  return clauses.join(' ');
}

function sortKeyCondition(attr: string, range: SortKeyRange, p: Placeholders): string {
  const name = p.name(attr);
  if ('prefix' in range) return `begins_with(${name}, ${p.value(range.prefix)})`;
  if ('between' in range) return `${name} BETWEEN ${p.value(range.between[0])} AND ${p.value(range.between[1])}`;
  if ('gte' in range) return `${name} >= ${p.value(range.gte)}`;
  return `${name} <= ${p.value(range.lte)}`;
}

/** Drops undefined attributes (at any depth of maps), as the SQLite table does. */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withoutUndefined(v);
  return out;
}

/** The document client returns binary as Uint8Array; the port promises Buffer. */
function withBuffers<T>(value: T): T {
  if (value instanceof Uint8Array) return (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)) as T;
  if (Array.isArray(value)) return value.map(withBuffers) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withBuffers(v)])) as T;
}

const keyOf = (key: ItemKey) => ({ [CATALOG_KEYS.partitionKey]: key.pk, [CATALOG_KEYS.sortKey]: key.sk });

export class DynamoTable implements Table {
  private readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;

  constructor(ddb: DynamoDBDocumentClient, tableName: string) {
    this.ddb = ddb;
    this.tableName = tableName;
  }

  async get(key: ItemKey): Promise<Item | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.tableName, Key: keyOf(key), ConsistentRead: true }));
    return res.Item ? withBuffers(res.Item) : undefined;
  }

  async put(item: Item & ItemKey, condition?: Condition): Promise<void> {
    const command = new PutCommand({ TableName: this.tableName, Item: withoutUndefined(item) as Item, ...this.conditionRequest(condition) });
    await writing(item, () => this.ddb.send(command));
  }

  async update(key: ItemKey, spec: UpdateSpec, condition?: Condition): Promise<Item> {
    const p = new Placeholders();
    const UpdateExpression = updateExpression(spec, p);
    if (condition) assertValidCondition(condition);
    const command = new UpdateCommand({
      TableName: this.tableName,
      Key: keyOf(key),
      UpdateExpression,
      ...(condition ? { ConditionExpression: conditionExpression(condition, p) } : {}),
      ...p.request(),
      ReturnValues: 'ALL_NEW',
    });
    const res = await writing(key, () => this.ddb.send(command));
    return withBuffers(res.Attributes!);
  }

  async delete(key: ItemKey, condition?: Condition): Promise<void> {
    const command = new DeleteCommand({ TableName: this.tableName, Key: keyOf(key), ...this.conditionRequest(condition) });
    await writing(key, () => this.ddb.send(command));
  }

  async transact(ops: readonly WriteOp[]): Promise<void> {
    assertValidTransaction(ops);
    const TransactItems = ops.map((op) => {
      const p = new Placeholders();
      const target = { TableName: this.tableName, ...(op.if ? { ConditionExpression: conditionExpression(op.if, p) } : {}) };
      if ('put' in op) return { Put: { ...target, Item: withoutUndefined(op.put) as Item, ...p.request() } };
      if ('update' in op) return { Update: { ...target, Key: keyOf(op.update), UpdateExpression: updateExpression(op.spec, p), ...p.request() } };
      return { Delete: { ...target, Key: keyOf(op.delete), ...p.request() } };
    });
    try {
      await this.ddb.send(new TransactWriteCommand({ TransactItems }));
    } catch (err) {
      if (!(err instanceof TransactionCanceledException)) throw err;
      const codes = (err.CancellationReasons ?? []).map((reason) => reason.Code ?? 'None');
      const failed = codes.findIndex((code) => code === 'ConditionalCheckFailed');
      if (failed >= 0) {
        const { pk, sk } = opKey(ops[failed]!);
        throw new ConditionFailedError(`transaction: condition failed on ${pk} ${sk}`, { cause: err });
      }
      if (codes.includes('TransactionConflict') && codes.every((code) => code === 'None' || code === 'TransactionConflict')) {
        throw new TransactionConflictError('transaction: conflicts with a concurrent write', { cause: err });
      }
      throw err;
    }
  }

  async query(spec: QuerySpec): Promise<Page> {
    assertValidQuery(spec);
    const index = spec.index ? CATALOG_INDEXES[spec.index] : undefined;
    const p = new Placeholders();
    const keyCondition = [`${p.name(index?.partitionKey ?? CATALOG_KEYS.partitionKey)} = ${p.value(spec.partition)}`];
    if (spec.sortKey) keyCondition.push(sortKeyCondition(index?.sortKey ?? CATALOG_KEYS.sortKey, spec.sortKey, p));
    const res = await this.ddb.send(
      new QueryCommand({
        TableName: this.tableName,
        ...(index ? { IndexName: index.indexName } : { ConsistentRead: true }),
        KeyConditionExpression: keyCondition.join(' AND '),
        ...p.request(),
        ScanIndexForward: !spec.descending,
        ...(spec.limit ? { Limit: spec.limit } : {}),
        ...(spec.cursor ? { ExclusiveStartKey: decodeCursor(spec.cursor) as Record<string, unknown> } : {}),
      }),
    );
    return {
      items: (res.Items ?? []).map(withBuffers),
      ...(res.LastEvaluatedKey ? { cursor: encodeCursor(res.LastEvaluatedKey) } : {}),
    };
  }

  private conditionRequest(condition: Condition | undefined) {
    if (!condition) return {};
    assertValidCondition(condition);
    const p = new Placeholders();
    const ConditionExpression = conditionExpression(condition, p);
    return { ConditionExpression, ...p.request() };
  }
}

/** Runs a single-item write, reporting a failed condition or a conflict as the port's errors. */
async function writing<T>(key: ItemKey, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) throw new ConditionFailedError(`condition failed on ${key.pk} ${key.sk}`, { cause: err });
    if (err instanceof TransactionConflictException) {
      throw new TransactionConflictError(`${key.pk} ${key.sk} is part of a concurrent transaction`, { cause: err });
    }
    throw err;
  }
}

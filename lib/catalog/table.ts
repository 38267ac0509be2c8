// The table port: the little of DynamoDB the catalog stores need, so they are written once and run on
// DynamoDB (lib/aws/dynamo-table.ts) and on SQLite (lib/embedded/sqlite-table.ts) alike.
//
// Items are plain objects whose key attributes (`pk`, `sk`, and an index's key attributes, see
// CATALOG_INDEXES in tables.ts) are strings. Binary values are Uint8Array/Buffer; numbers are JS numbers.
// Every conditional write is atomic: the condition is checked and the write made as one step.
import type { CatalogIndexName } from './tables.ts';

export type Item = Record<string, unknown>;

export interface ItemKey {
  pk: string;
  sk: string;
}

/** A condition on the item a write targets (the item as stored before the write). */
export type Condition =
  /** The item exists. */
  | { op: 'exists' }
  /** No item has this key. */
  | { op: 'notExists' }
  /** The attribute equals one of `values`. */
  | { op: 'in'; attr: string; values: readonly unknown[] }
  /** The attribute is absent or equals none of `values`. */
  | { op: 'notIn'; attr: string; values: readonly unknown[] }
  /** The attribute is absent. */
  | { op: 'absent'; attr: string }
  | { op: 'and'; all: readonly Condition[] };

export const cond = {
  exists: (): Condition => ({ op: 'exists' }),
  notExists: (): Condition => ({ op: 'notExists' }),
  in: (attr: string, values: readonly unknown[]): Condition => ({ op: 'in', attr, values }),
  eq: (attr: string, value: unknown): Condition => ({ op: 'in', attr, values: [value] }),
  notIn: (attr: string, values: readonly unknown[]): Condition => ({ op: 'notIn', attr, values }),
  absent: (attr: string): Condition => ({ op: 'absent', attr }),
  and: (...all: Condition[]): Condition => ({ op: 'and', all }),
};

export interface UpdateSpec {
  /** Attributes to set; an `undefined` value removes the attribute. Key attributes cannot be set. */
  set?: Record<string, unknown>;
  /** Attributes to remove. */
  remove?: readonly string[];
  /** Atomic numeric additions (a missing attribute counts as 0). */
  add?: Record<string, number>;
}

export type WriteOp =
  | { put: Item & ItemKey; if?: Condition }
  | { update: ItemKey; spec: UpdateSpec; if?: Condition }
  | { delete: ItemKey; if?: Condition };

/** Sort-key selection within one partition. */
export type SortKeyRange = { prefix: string } | { between: readonly [string, string] } | { gte: string } | { lte: string };

export interface QuerySpec {
  /** A secondary index; the table itself when absent. */
  index?: CatalogIndexName;
  /** The partition key value (of the table or of the index). */
  partition: string;
  sortKey?: SortKeyRange;
  /** Newest (largest sort key) first. */
  descending?: boolean;
  /** Items per page (the adapter may return fewer). */
  limit?: number;
  /** From a previous page's `cursor`. */
  cursor?: string;
}

export interface Page {
  items: Item[];
  /** Present when more items may follow; pass it back as `cursor`. */
  cursor?: string;
}

/** A write's condition did not hold (for a transaction: any op's). Nothing was written. */
export class ConditionFailedError extends Error {
  override name = 'ConditionFailedError';
}

/** A write collided with a concurrent one (or the table stayed locked) and was not made; it may be retried. */
export class TransactionConflictError extends Error {
  override name = 'TransactionConflictError';
}

export interface Table {
  get(key: ItemKey): Promise<Item | undefined>;
  put(item: Item & ItemKey, condition?: Condition): Promise<void>;
  /** Applies `spec` and returns the item as it is after the update. Without a condition, creates the item if absent. */
  update(key: ItemKey, spec: UpdateSpec, condition?: Condition): Promise<Item>;
  delete(key: ItemKey, condition?: Condition): Promise<void>;
  /** All of `ops`, atomically: every condition holds and every write happens, or nothing does. At most 25 ops, one per key. */
  transact(ops: readonly WriteOp[]): Promise<void>;
  /** One page of a partition, in sort-key order. Reads on the table are strongly consistent; index reads need not be. */
  query(spec: QuerySpec): Promise<Page>;
}

/** Every item of a query, page after page. */
export async function* queryAll(table: Table, spec: Omit<QuerySpec, 'cursor'>): AsyncIterable<Item> {
  let cursor: string | undefined;
  do {
    const page = await table.query({ ...spec, ...(cursor ? { cursor } : {}) });
    yield* page.items;
    cursor = page.cursor;
  } while (cursor);
}

// Checks both adapters make before a write, so a store that works on one table works on the other.

const TABLE_KEY_ATTRS: readonly string[] = ['pk', 'sk'];
/** DynamoDB's limits: operands of IN, and items of one transaction (the port promises 25). */
const MAX_IN_VALUES = 100;
const MAX_TRANSACTION_OPS = 25;

export function assertValidCondition(condition: Condition): void {
  switch (condition.op) {
    case 'in':
    case 'notIn':
      if (condition.values.length < 1 || condition.values.length > MAX_IN_VALUES) {
        throw new Error(`condition on ${condition.attr}: between 1 and ${MAX_IN_VALUES} values`);
      }
      return;
    case 'and':
      if (!condition.all.length) throw new Error('an "and" condition needs at least one condition');
      condition.all.forEach(assertValidCondition);
      return;
    default:
      return;
  }
}

/** An update spec as three lists: `set` without undefined values (those moved to `remove`). */
export interface UpdateChanges {
  set: Array<[string, unknown]>;
  remove: string[];
  add: Array<[string, number]>;
}

/** Validates `spec` (no key attributes, no attribute twice, at least one change) and flattens it. */
export function updateChanges(spec: UpdateSpec): UpdateChanges {
  const changes: UpdateChanges = { set: [], remove: [...(spec.remove ?? [])], add: [] };
  for (const [attr, value] of Object.entries(spec.set ?? {})) {
    if (value === undefined) changes.remove.push(attr);
    else changes.set.push([attr, value]);
  }
  for (const [attr, n] of Object.entries(spec.add ?? {})) {
    if (!Number.isFinite(n)) throw new Error(`update: cannot add ${n} to ${attr}`);
    changes.add.push([attr, n]);
  }
  const attrs = [...changes.set.map(([a]) => a), ...changes.remove, ...changes.add.map(([a]) => a)];
  if (!attrs.length) throw new Error('update: nothing to change');
  const seen = new Set<string>();
  for (const attr of attrs) {
    if (TABLE_KEY_ATTRS.includes(attr)) throw new Error(`update: ${attr} is a key attribute`);
    if (seen.has(attr)) throw new Error(`update: ${attr} appears twice`);
    seen.add(attr);
  }
  return changes;
}

export function opKey(op: WriteOp): ItemKey {
  return 'put' in op ? op.put : 'update' in op ? op.update : op.delete;
}

export function assertValidTransaction(ops: readonly WriteOp[]): void {
  if (ops.length < 1 || ops.length > MAX_TRANSACTION_OPS) throw new Error(`transact: between 1 and ${MAX_TRANSACTION_OPS} ops`);
  const keys = new Set<string>();
  for (const op of ops) {
    const { pk, sk } = opKey(op);
    const key = JSON.stringify([pk, sk]);
    if (keys.has(key)) throw new Error(`transact: two ops on ${pk} ${sk}`);
    keys.add(key);
    if (op.if) assertValidCondition(op.if);
    if ('update' in op) updateChanges(op.spec);
  }
}

export function assertValidQuery(spec: QuerySpec): void {
  if (spec.limit !== undefined && !(Number.isInteger(spec.limit) && spec.limit > 0)) throw new Error(`query: invalid limit ${spec.limit}`);
  const range = spec.sortKey;
  if (range && 'between' in range && Buffer.compare(Buffer.from(range.between[0]), Buffer.from(range.between[1])) > 0) {
    throw new Error('query: "between" bounds are out of order');
  }
}

/** Cursors are opaque to callers: base64url of the adapter's JSON position. */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    throw new Error('query: invalid cursor');
  }
}

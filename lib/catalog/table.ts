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

// The catalog table port on SQLite (node:sqlite), for the embedded backend.
//
// One SQL table `items`: the table key (pk, sk), one column pair per secondary index in CATALOG_INDEXES
// (copies of the item's index key attributes, NULL when absent), and `body`, the whole item but pk and sk
// as JSON with binary values tagged ({"$binary": "<base64>"}). Each index is a partial SQL index over the
// rows that have both its attributes. A later index added to the registry is added to an existing file
// (column, backfill from the bodies, SQL index) when the file is opened.
//
// Every write runs in BEGIN IMMEDIATE … COMMIT: the write lock is taken before the stored item is read, so
// a condition is checked and the write made as one step, also against another process on the same file.
// WAL with synchronous=FULL: a committed write survives a power loss.
import { isDeepStrictEqual } from 'node:util';
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
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
import type { Condition, Item, ItemKey, Page, QuerySpec, SortKeyRange, Table, UpdateChanges, UpdateSpec, WriteOp } from '../catalog/table.ts';
import { CATALOG_INDEXES } from '../catalog/tables.ts';

const BUSY_TIMEOUT_MS = 10_000;
/** Items per page when the query names no limit (DynamoDB stops at 1 MB). */
const DEFAULT_PAGE_ITEMS = 1000;
const BINARY_TAG = '$binary';
const SQLITE_BUSY = 5;

interface IndexColumns {
  partition: string;
  sort: string;
  sqlIndex: string;
}

const INDEX_COLUMNS: Record<string, IndexColumns> = Object.fromEntries(
  Object.entries(CATALOG_INDEXES).map(([name, index]) => {
    for (const attr of [index.partitionKey, index.sortKey]) {
      if (!/^[a-z][a-z0-9_]*$/i.test(attr) || ['pk', 'sk', 'body'].includes(attr)) throw new Error(`index ${name}: unusable attribute name ${attr}`);
    }
    return [name, { partition: index.partitionKey, sort: index.sortKey, sqlIndex: `items_${name}` }];
  }),
);
const INDEX_ATTRS = Object.values(INDEX_COLUMNS).flatMap((c) => [c.partition, c.sort]);

function encodeBody(item: Item): string {
  return JSON.stringify(item, function (this: Record<string, unknown>, key, value) {
    const raw = this[key];
    return raw instanceof Uint8Array ? { [BINARY_TAG]: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') } : value;
  });
}

function decodeBody(body: string): Item {
  return JSON.parse(body, (_key, value) => {
    if (value && typeof value === 'object' && !Array.isArray(value) && typeof value[BINARY_TAG] === 'string' && Object.keys(value).length === 1) {
      return Buffer.from(value[BINARY_TAG], 'base64');
    }
    return value;
  });
}

function assertKeyAttrs(item: Item): void {
  for (const attr of ['pk', 'sk']) {
    if (typeof item[attr] !== 'string' || !item[attr]) throw new Error(`item: ${attr} must be a non-empty string`);
  }
  for (const attr of INDEX_ATTRS) {
    const value = item[attr];
    if (value !== undefined && (typeof value !== 'string' || !value)) throw new Error(`item: index attribute ${attr} must be a non-empty string`);
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return isDeepStrictEqual(a, b);
}

function isOneOf(item: Item | undefined, attr: string, values: readonly unknown[]): boolean {
  return item !== undefined && Object.hasOwn(item, attr) && values.some((v) => sameValue(item[attr], v));
}

function holds(condition: Condition, item: Item | undefined): boolean {
  switch (condition.op) {
    case 'exists':
      return item !== undefined;
    case 'notExists':
      return item === undefined;
    case 'in':
      return isOneOf(item, condition.attr, condition.values);
    case 'notIn':
      return !isOneOf(item, condition.attr, condition.values);
    case 'absent':
      return item === undefined || !Object.hasOwn(item, condition.attr);
    case 'and':
      return condition.all.every((c) => holds(c, item));
  }
}

/** The smallest string greater than every string that starts with `prefix`; undefined when there is none. */
function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0)!);
  while (points.length) {
    const last = points.pop()!;
    if (last < 0x10ffff) {
      // Skip the surrogate range: it does not occur in UTF-8 text.
      points.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  return undefined;
}

function rangeClause(column: string, range: SortKeyRange): { sql: string; params: string[] } {
  if ('prefix' in range) {
    const end = prefixEnd(range.prefix);
    return end === undefined ? { sql: `${column} >= ?`, params: [range.prefix] } : { sql: `${column} >= ? AND ${column} < ?`, params: [range.prefix, end] };
  }
  if ('between' in range) return { sql: `${column} BETWEEN ? AND ?`, params: [...range.between] };
  if ('gte' in range) return { sql: `${column} >= ?`, params: [range.gte] };
  return { sql: `${column} <= ?`, params: [range.lte] };
}

const quote = (name: string) => `"${name}"`;

interface Row {
  pk: string;
  sk: string;
  body: string;
  /** The sort key a query orders by. */
  position?: string;
}

export class SqliteTable implements Table {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  /** `path`: the database file (created when absent), or ':memory:'. */
  constructor(path: string) {
    this.db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = FULL');
    this.immediate(() => this.createSchema());
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  async get(key: ItemKey): Promise<Item | undefined> {
    return this.read(key);
  }

  async put(item: Item & ItemKey, condition?: Condition): Promise<void> {
    if (condition) assertValidCondition(condition);
    assertKeyAttrs(item);
    this.immediate(() => {
      if (condition) this.check(item, condition);
      this.write(item);
    });
  }

  async update(key: ItemKey, spec: UpdateSpec, condition?: Condition): Promise<Item> {
    if (condition) assertValidCondition(condition);
    const changes = updateChanges(spec);
    return this.immediate(() => this.applyUpdate(key, condition ? this.check(key, condition) : this.read(key), changes));
  }

  async delete(key: ItemKey, condition?: Condition): Promise<void> {
    if (condition) assertValidCondition(condition);
    this.immediate(() => {
      if (condition) this.check(key, condition);
      this.remove(key);
    });
  }

  async transact(ops: readonly WriteOp[]): Promise<void> {
    assertValidTransaction(ops);
    for (const op of ops) if ('put' in op) assertKeyAttrs(op.put);
    this.immediate(() => {
      // Ops target distinct items, so each sees its item as it was before the transaction, as on DynamoDB.
      const stored = ops.map((op) => (op.if ? this.check(opKey(op), op.if, 'transaction: ') : this.read(opKey(op))));
      ops.forEach((op, i) => {
        if ('put' in op) this.write(op.put);
        else if ('update' in op) this.applyUpdate(op.update, stored[i], updateChanges(op.spec));
        else this.remove(op.delete);
      });
    });
  }

  async query(spec: QuerySpec): Promise<Page> {
    assertValidQuery(spec);
    const index = spec.index ? INDEX_COLUMNS[spec.index] : undefined;
    if (spec.index && !index) throw new Error(`query: unknown index ${spec.index}`);
    const partition = index ? quote(index.partition) : 'pk';
    const sort = index ? quote(index.sort) : 'sk';
    // Index entries may share a sort key; the table key after it makes the order total and the cursor exact.
    const order = index ? [sort, 'pk', 'sk'] : ['sk'];
    const where = [`${partition} = ?`];
    const params: string[] = [spec.partition];
    if (index) where.push(`${sort} IS NOT NULL`);
    if (spec.sortKey) {
      const range = rangeClause(sort, spec.sortKey);
      where.push(range.sql);
      params.push(...range.params);
    }
    if (spec.cursor) {
      const position = decodeCursor(spec.cursor);
      if (!Array.isArray(position) || position.length !== order.length || !position.every((v) => typeof v === 'string')) {
        throw new Error('query: invalid cursor');
      }
      where.push(`(${order.join(', ')}) ${spec.descending ? '<' : '>'} (${order.map(() => '?').join(', ')})`);
      params.push(...position);
    }
    const direction = spec.descending ? 'DESC' : 'ASC';
    const limit = spec.limit ?? DEFAULT_PAGE_ITEMS;
    const sql = `SELECT pk, sk, ${sort} AS position, body FROM items WHERE ${where.join(' AND ')} ORDER BY ${order.map((c) => `${c} ${direction}`).join(', ')} LIMIT ?`;
    // One row more than the page tells whether another page follows.
    const rows = this.statement(sql).all(...params, limit + 1) as unknown as Row[];
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => this.fromRow(row)),
      ...(rows.length > limit && last ? { cursor: encodeCursor(index ? [last.position, last.pk, last.sk] : [last.sk]) } : {}),
    };
  }

  private createSchema(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS items (pk TEXT NOT NULL, sk TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID');
    const columns = new Set((this.db.prepare('PRAGMA table_info(items)').all() as Array<{ name: string }>).map((c) => c.name));
    for (const index of Object.values(INDEX_COLUMNS)) {
      for (const attr of [index.partition, index.sort]) {
        if (columns.has(attr)) continue;
        this.db.exec(`ALTER TABLE items ADD COLUMN ${quote(attr)} TEXT`);
        const path = `'$.${quote(attr)}'`;
        this.db.exec(`UPDATE items SET ${quote(attr)} = json_extract(body, ${path}) WHERE json_type(body, ${path}) = 'text'`);
        columns.add(attr);
      }
      const [p, s] = [quote(index.partition), quote(index.sort)];
      this.db.exec(`CREATE INDEX IF NOT EXISTS ${quote(index.sqlIndex)} ON items (${p}, ${s}, pk, sk) WHERE ${p} IS NOT NULL AND ${s} IS NOT NULL`);
    }
  }

  /** Runs `fn` holding the write lock; rolls back when it throws. */
  private immediate<T>(fn: () => T): T {
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if ((err as { errcode?: number }).errcode === SQLITE_BUSY) throw new TransactionConflictError('the catalog database is locked by another connection', { cause: err });
      throw err;
    }
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  private statement(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private read(key: ItemKey): Item | undefined {
    const row = this.statement('SELECT pk, sk, body FROM items WHERE pk = ? AND sk = ?').get(key.pk, key.sk) as unknown as Row | undefined;
    return row ? this.fromRow(row) : undefined;
  }

  /** The stored item, when `condition` holds for it; throws ConditionFailedError otherwise. */
  private check(key: ItemKey, condition: Condition, context = ''): Item | undefined {
    const stored = this.read(key);
    if (!holds(condition, stored)) throw new ConditionFailedError(`${context}condition failed on ${key.pk} ${key.sk}`);
    return stored;
  }

  private applyUpdate(key: ItemKey, stored: Item | undefined, changes: UpdateChanges): Item {
    const next: Item & ItemKey = { ...stored, pk: key.pk, sk: key.sk };
    for (const [attr, value] of changes.set) next[attr] = value;
    for (const attr of changes.remove) delete next[attr];
    for (const [attr, n] of changes.add) {
      const current = next[attr] ?? 0;
      if (typeof current !== 'number') throw new Error(`update: cannot add to ${attr}, it is not a number`);
      next[attr] = current + n;
    }
    assertKeyAttrs(next);
    return this.write(next);
  }

  /** Stores `item` whole (insert or replace) and returns it as a read would. */
  private write(item: Item & ItemKey): Item {
    const { pk, sk, ...rest } = item;
    const body = encodeBody(rest);
    const indexValues = INDEX_ATTRS.map((attr) => (typeof item[attr] === 'string' ? (item[attr] as string) : null));
    const columns = ['pk', 'sk', ...INDEX_ATTRS.map(quote), 'body'];
    this.statement(`INSERT OR REPLACE INTO items (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(pk, sk, ...indexValues, body);
    return { pk, sk, ...decodeBody(body) };
  }

  private remove(key: ItemKey): void {
    this.statement('DELETE FROM items WHERE pk = ? AND sk = ?').run(key.pk, key.sk);
  }

  private fromRow(row: Row): Item {
    return { pk: row.pk, sk: row.sk, ...decodeBody(row.body) };
  }
}

// The table port's contract, run against DynamoDB (on the emulator) and SQLite. Each test works in
// partitions of its own, so the tests share one table per adapter.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionFailedError, cond, queryAll } from '../../lib/catalog/table.ts';
import type { Condition, Item, QuerySpec, Table } from '../../lib/catalog/table.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';
import { TABLE_ADAPTERS, tempDir } from './adapters.ts';
import type { Opened } from './adapters.ts';

const newPartition = () => `T#${randomUUID()}`;

async function collect(table: Table, spec: Omit<QuerySpec, 'cursor'>): Promise<Item[]> {
  const out: Item[] = [];
  for await (const item of queryAll(table, spec)) out.push(item);
  return out;
}

/** Every page of a query, checking each holds at most `spec.limit` items. */
async function pages(table: Table, spec: Omit<QuerySpec, 'cursor'>): Promise<Item[][]> {
  const out: Item[][] = [];
  let cursor: string | undefined;
  do {
    const page = await table.query({ ...spec, ...(cursor ? { cursor } : {}) });
    if (spec.limit) expect(page.items.length).toBeLessThanOrEqual(spec.limit);
    out.push(page.items);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

describe.each(TABLE_ADAPTERS)('table contract: $name', (adapter) => {
  let opened: Opened<Table>;
  let table: Table;

  beforeAll(async () => {
    opened = await adapter.open();
    table = opened.subject;
  });
  afterAll(async () => {
    await opened?.close();
  });

  describe('items', () => {
    it('stores an item and reads it back with the same shape', async () => {
      const pk = newPartition();
      const item = {
        pk,
        sk: 'ITEM',
        name: 'vol-1',
        empty: '',
        count: 42,
        ratio: 0.25,
        negative: -7,
        flag: false,
        nothing: null,
        list: ['a', 1, true],
        nested: { depth: 2, inner: { label: 'x', blob: Buffer.from([1, 2, 3]) } },
        blob: Buffer.from([0, 255, 16, 32]),
        missing: undefined,
      };
      await table.put(item);
      const read = await table.get({ pk, sk: 'ITEM' });
      const { missing: _missing, ...expected } = item;
      expect(read).toEqual(expected);
      expect('missing' in read!).toBe(false);
      expect(Buffer.isBuffer(read!.blob)).toBe(true);
      expect(Buffer.isBuffer((read!.nested as { inner: { blob: unknown } }).inner.blob)).toBe(true);
      expect(typeof read!.count).toBe('number');
    });

    it('returns binary given as a Uint8Array as a Buffer', async () => {
      const pk = newPartition();
      await table.put({ pk, sk: 'BIN', data: new Uint8Array([0, 9, 8, 7, 0]).subarray(1, 4) });
      const read = await table.get({ pk, sk: 'BIN' });
      expect(Buffer.isBuffer(read!.data)).toBe(true);
      expect(read!.data).toEqual(Buffer.from([9, 8, 7]));
    });

    it('returns undefined for a missing item', async () => {
      expect(await table.get({ pk: newPartition(), sk: 'NONE' })).toBeUndefined();
    });

    it('replaces an item whole on an unconditional put', async () => {
      const pk = newPartition();
      await table.put({ pk, sk: 'I', a: 1, b: 2 });
      await table.put({ pk, sk: 'I', a: 3 });
      expect(await table.get({ pk, sk: 'I' })).toEqual({ pk, sk: 'I', a: 3 });
    });

    it('deletes, and deleting a missing item is no error', async () => {
      const pk = newPartition();
      await table.put({ pk, sk: 'I', a: 1 });
      await table.delete({ pk, sk: 'I' });
      expect(await table.get({ pk, sk: 'I' })).toBeUndefined();
      await table.delete({ pk, sk: 'I' });
    });
  });

  describe('conditions', () => {
    const stored = { status: 'available', size: 10, blob: Buffer.from('ab') };
    // Each case: a condition and whether it holds for `stored` (present) and for a missing item.
    const cases: Array<{ name: string; condition: Condition; present: boolean; missing: boolean }> = [
      { name: 'exists', condition: cond.exists(), present: true, missing: false },
      { name: 'notExists', condition: cond.notExists(), present: false, missing: true },
      { name: 'in (match)', condition: cond.in('status', ['creating', 'available']), present: true, missing: false },
      { name: 'in (no match)', condition: cond.in('status', ['creating', 'error']), present: false, missing: false },
      { name: 'in (number)', condition: cond.eq('size', 10), present: true, missing: false },
      { name: 'in (number, not a string)', condition: cond.eq('size', '10'), present: false, missing: false },
      { name: 'in (binary)', condition: cond.eq('blob', Buffer.from('ab')), present: true, missing: false },
      { name: 'in (absent attribute)', condition: cond.eq('other', 'x'), present: false, missing: false },
      { name: 'notIn (match)', condition: cond.notIn('status', ['available']), present: false, missing: true },
      { name: 'notIn (no match)', condition: cond.notIn('status', ['creating', 'error']), present: true, missing: true },
      { name: 'notIn (absent attribute)', condition: cond.notIn('other', ['x']), present: true, missing: true },
      { name: 'absent (present attribute)', condition: cond.absent('status'), present: false, missing: true },
      { name: 'absent (absent attribute)', condition: cond.absent('other'), present: true, missing: true },
      { name: 'and (all hold)', condition: cond.and(cond.exists(), cond.eq('status', 'available'), cond.absent('lock')), present: true, missing: false },
      { name: 'and (one fails)', condition: cond.and(cond.exists(), cond.eq('status', 'error')), present: false, missing: false },
      {
        name: 'and (nested, with notIn)',
        condition: cond.and(cond.notIn('status', ['error']), cond.and(cond.absent('lock'), cond.notIn('size', [1, 2]))),
        present: true,
        missing: true,
      },
    ];

    describe.each(cases)('$name', ({ condition, present, missing }) => {
      async function expectWrite(write: Promise<unknown>, holds: boolean) {
        if (holds) await write;
        else await expect(write).rejects.toBeInstanceOf(ConditionFailedError);
      }

      it('put', async () => {
        const pk = newPartition();
        await table.put({ pk, sk: 'I', ...stored });
        await expectWrite(table.put({ pk, sk: 'I', ...stored, written: true }, condition), present);
        expect((await table.get({ pk, sk: 'I' }))!.written).toBe(present ? true : undefined);
        await expectWrite(table.put({ pk, sk: 'NEW', written: true }, condition), missing);
        expect(await table.get({ pk, sk: 'NEW' })).toEqual(missing ? { pk, sk: 'NEW', written: true } : undefined);
      });

      it('update', async () => {
        const pk = newPartition();
        await table.put({ pk, sk: 'I', ...stored });
        await expectWrite(table.update({ pk, sk: 'I' }, { set: { written: true } }, condition), present);
        expect((await table.get({ pk, sk: 'I' }))!.written).toBe(present ? true : undefined);
        await expectWrite(table.update({ pk, sk: 'NEW' }, { set: { written: true } }, condition), missing);
        expect(await table.get({ pk, sk: 'NEW' })).toEqual(missing ? { pk, sk: 'NEW', written: true } : undefined);
      });

      it('delete', async () => {
        const pk = newPartition();
        await table.put({ pk, sk: 'I', ...stored });
        await expectWrite(table.delete({ pk, sk: 'I' }, condition), present);
        expect(await table.get({ pk, sk: 'I' })).toEqual(present ? undefined : { pk, sk: 'I', ...stored });
        await expectWrite(table.delete({ pk, sk: 'NEW' }, condition), missing);
      });
    });
  });

  describe('update', () => {
    it('sets, removes and adds, and returns the item as stored after the update', async () => {
      const pk = newPartition();
      await table.put({ pk, sk: 'I', keep: 'k', drop1: 1, drop2: 2, counter: 5, status: 'a' });
      const returned = await table.update(
        { pk, sk: 'I' },
        { set: { status: 'b', blob: Buffer.from([7]), drop2: undefined }, remove: ['drop1'], add: { counter: 3, fresh: 2 } },
      );
      const expected = { pk, sk: 'I', keep: 'k', counter: 8, fresh: 2, status: 'b', blob: Buffer.from([7]) };
      expect(returned).toEqual(expected);
      expect(Buffer.isBuffer(returned.blob)).toBe(true);
      expect(await table.get({ pk, sk: 'I' })).toEqual(expected);
    });

    it('creates the item when there is no condition', async () => {
      const pk = newPartition();
      expect(await table.update({ pk, sk: 'I' }, { add: { n: 1 }, set: { a: 'x' } })).toEqual({ pk, sk: 'I', n: 1, a: 'x' });
    });

    it('adds atomically under concurrency', async () => {
      const pk = newPartition();
      await Promise.all(Array.from({ length: 20 }, (_, i) => table.update({ pk, sk: 'C' }, { add: { n: i + 1 } })));
      expect((await table.get({ pk, sk: 'C' }))!.n).toBe(210);
    });

    it('refuses to change a key attribute or an empty spec', async () => {
      const pk = newPartition();
      await expect(table.update({ pk, sk: 'I' }, { set: { sk: 'other' } })).rejects.toThrow(/key attribute/);
      await expect(table.update({ pk, sk: 'I' }, {})).rejects.toThrow(/nothing to change/);
      expect(await table.get({ pk, sk: 'I' })).toBeUndefined();
    });
  });

  describe('transact', () => {
    it('makes every write when every condition holds', async () => {
      const pk = newPartition();
      await table.put({ pk, sk: 'DEL', status: 'deleting' });
      await table.put({ pk, sk: 'UPD', n: 1 });
      await table.transact([
        { put: { pk, sk: 'NEW', a: 1 }, if: cond.notExists() },
        { update: { pk, sk: 'UPD' }, spec: { add: { n: 1 }, set: { s: 'x' } }, if: cond.exists() },
        { delete: { pk, sk: 'DEL' }, if: cond.eq('status', 'deleting') },
      ]);
      expect(await collect(table, { partition: pk })).toEqual([
        { pk, sk: 'NEW', a: 1 },
        { pk, sk: 'UPD', n: 2, s: 'x' },
      ]);
    });

    it('writes nothing when the last op fails its condition', async () => {
      const pk = newPartition();
      await table.put({ pk, sk: 'UPD', n: 1 });
      await table.put({ pk, sk: 'DEL', status: 'available' });
      await expect(
        table.transact([
          { put: { pk, sk: 'NEW', a: 1 } },
          { update: { pk, sk: 'UPD' }, spec: { add: { n: 1 } } },
          { delete: { pk, sk: 'DEL' }, if: cond.eq('status', 'deleting') },
        ]),
      ).rejects.toBeInstanceOf(ConditionFailedError);
      expect(await collect(table, { partition: pk })).toEqual([
        { pk, sk: 'DEL', status: 'available' },
        { pk, sk: 'UPD', n: 1 },
      ]);
    });

    it('refuses two ops on one item', async () => {
      const pk = newPartition();
      await expect(table.transact([{ put: { pk, sk: 'A' } }, { delete: { pk, sk: 'A' } }])).rejects.toThrow(/two ops/);
    });
  });

  describe('query', () => {
    const sortKeys = ['A#01', 'A#02', 'A#03', 'AB#01', 'B#01', 'B#02', 'C#01'];
    let pk: string;

    beforeAll(async () => {
      pk = newPartition();
      for (const sk of [...sortKeys].reverse()) await table.put({ pk, sk, n: sortKeys.indexOf(sk) });
      await table.put({ pk: `${pk}-other`, sk: 'A#01' });
    });
    const sks = (items: Item[]) => items.map((i) => i.sk);

    it('reads a partition in sort-key order, ascending and descending', async () => {
      expect(sks(await collect(table, { partition: pk }))).toEqual(sortKeys);
      expect(sks(await collect(table, { partition: pk, descending: true }))).toEqual([...sortKeys].reverse());
      expect(await collect(table, { partition: newPartition() })).toEqual([]);
    });

    it('selects by prefix, between, gte and lte', async () => {
      expect(sks(await collect(table, { partition: pk, sortKey: { prefix: 'A#' } }))).toEqual(['A#01', 'A#02', 'A#03']);
      expect(sks(await collect(table, { partition: pk, sortKey: { prefix: 'A' } }))).toEqual(['A#01', 'A#02', 'A#03', 'AB#01']);
      expect(sks(await collect(table, { partition: pk, sortKey: { prefix: 'A#' }, descending: true }))).toEqual(['A#03', 'A#02', 'A#01']);
      expect(sks(await collect(table, { partition: pk, sortKey: { between: ['A#02', 'B#01'] } }))).toEqual(['A#02', 'A#03', 'AB#01', 'B#01']);
      expect(sks(await collect(table, { partition: pk, sortKey: { gte: 'B#' } }))).toEqual(['B#01', 'B#02', 'C#01']);
      expect(sks(await collect(table, { partition: pk, sortKey: { lte: 'A#03' } }))).toEqual(['A#01', 'A#02', 'A#03']);
      expect(sks(await collect(table, { partition: pk, sortKey: { prefix: 'Z' } }))).toEqual([]);
    });

    it('pages with small limits, in both directions and within a range', async () => {
      const ascending = await pages(table, { partition: pk, limit: 2 });
      expect(ascending.length).toBeGreaterThanOrEqual(4);
      expect(sks(ascending.flat())).toEqual(sortKeys);
      const descending = await pages(table, { partition: pk, limit: 3, descending: true });
      expect(sks(descending.flat())).toEqual([...sortKeys].reverse());
      const ranged = await pages(table, { partition: pk, limit: 1, sortKey: { prefix: 'B#' } });
      expect(sks(ranged.flat())).toEqual(['B#01', 'B#02']);
      const first = await table.query({ partition: pk, limit: 2 });
      expect(first.cursor).toBeDefined();
    });

    it('returns binary values as Buffers', async () => {
      const p = newPartition();
      await table.put({ pk: p, sk: 'B', blob: Buffer.from([1, 2]) });
      const [item] = await collect(table, { partition: p });
      expect(Buffer.isBuffer(item!.blob)).toBe(true);
      expect(item!.blob).toEqual(Buffer.from([1, 2]));
    });
  });

  describe('secondary index', () => {
    it('holds the items with both index attributes, ordered by the index sort key', async () => {
      const pk = newPartition();
      const ipk = `IDX#${randomUUID()}`;
      await table.put({ pk, sk: 'I3', gsi1pk: ipk, gsi1sk: '2026-03', n: 3 });
      await table.put({ pk, sk: 'I1', gsi1pk: ipk, gsi1sk: '2026-01', n: 1 });
      await table.put({ pk: newPartition(), sk: 'I2', gsi1pk: ipk, gsi1sk: '2026-02', n: 2 });
      await table.put({ pk, sk: 'NOSORT', gsi1pk: ipk, n: 0 });
      await table.put({ pk, sk: 'NOINDEX', n: -1 });
      const items = await collect(table, { index: 'gsi1', partition: ipk });
      expect(items.map((i) => i.n)).toEqual([1, 2, 3]);
      expect(items[0]).toEqual({ pk, sk: 'I1', gsi1pk: ipk, gsi1sk: '2026-01', n: 1 });
      expect((await collect(table, { index: 'gsi1', partition: ipk, descending: true })).map((i) => i.n)).toEqual([3, 2, 1]);
      expect((await collect(table, { index: 'gsi1', partition: ipk, sortKey: { gte: '2026-02' } })).map((i) => i.n)).toEqual([2, 3]);
      expect((await collect(table, { index: 'gsi1', partition: ipk, sortKey: { prefix: '2026-0' } })).map((i) => i.n)).toEqual([1, 2, 3]);
    });

    it('follows updates that set or remove the index attributes', async () => {
      const pk = newPartition();
      const ipk = `IDX#${randomUUID()}`;
      await table.put({ pk, sk: 'I', n: 1 });
      await table.update({ pk, sk: 'I' }, { set: { gsi1pk: ipk, gsi1sk: 'a' } });
      expect((await collect(table, { index: 'gsi1', partition: ipk })).map((i) => i.sk)).toEqual(['I']);
      await table.update({ pk, sk: 'I' }, { remove: ['gsi1pk', 'gsi1sk'] });
      expect(await collect(table, { index: 'gsi1', partition: ipk })).toEqual([]);
    });

    it('pages over more items than a page, including items sharing an index sort key', async () => {
      const ipk = `IDX#${randomUUID()}`;
      const expected: string[] = [];
      for (let i = 0; i < 9; i++) {
        const pk = `P#${i}`;
        await table.put({ pk, sk: `S#${ipk}`, gsi1pk: ipk, gsi1sk: `k${Math.floor(i / 3)}` });
        expected.push(pk);
      }
      const ascending = (await pages(table, { index: 'gsi1', partition: ipk, limit: 2 })).flat();
      expect(ascending.map((i) => i.gsi1sk)).toEqual(['k0', 'k0', 'k0', 'k1', 'k1', 'k1', 'k2', 'k2', 'k2']);
      expect(new Set(ascending.map((i) => i.pk))).toEqual(new Set(expected));
      const descending = (await pages(table, { index: 'gsi1', partition: ipk, limit: 4, descending: true })).flat();
      expect(descending.map((i) => i.gsi1sk)).toEqual(['k2', 'k2', 'k2', 'k1', 'k1', 'k1', 'k0', 'k0', 'k0']);
      expect(new Set(descending.map((i) => i.pk))).toEqual(new Set(expected));
    });
  });
});

describe('SqliteTable on a file', () => {
  it('keeps its items across close and reopen', async () => {
    const dir = await tempDir();
    try {
      const first = new SqliteTable(dir.path('catalog.db'));
      await first.put({ pk: 'P', sk: 'A', gsi1pk: 'I', gsi1sk: '1', blob: Buffer.from([1]) });
      await first.transact([{ put: { pk: 'P', sk: 'B', n: 1 } }, { update: { pk: 'P', sk: 'C' }, spec: { add: { n: 2 } } }]);
      first.close();
      const second = new SqliteTable(dir.path('catalog.db'));
      expect(await collect(second, { partition: 'P' })).toEqual([
        { pk: 'P', sk: 'A', gsi1pk: 'I', gsi1sk: '1', blob: Buffer.from([1]) },
        { pk: 'P', sk: 'B', n: 1 },
        { pk: 'P', sk: 'C', n: 2 },
      ]);
      expect((await collect(second, { index: 'gsi1', partition: 'I' })).map((i) => i.sk)).toEqual(['A']);
      second.close();
    } finally {
      await dir.remove();
    }
  });

  it('adds the columns of an index new to an existing file, filled from the stored items', async () => {
    const dir = await tempDir();
    try {
      const old = new DatabaseSync(dir.path('catalog.db'));
      old.exec('CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID');
      const insert = old.prepare('INSERT INTO items (pk, sk, body) VALUES (?, ?, ?)');
      insert.run('P', 'B', JSON.stringify({ gsi1pk: 'I', gsi1sk: '2', n: 2 }));
      insert.run('P', 'A', JSON.stringify({ gsi1pk: 'I', gsi1sk: '1', n: 1 }));
      insert.run('P', 'C', JSON.stringify({ gsi1pk: 'I', n: 3 }));
      old.close();
      const table = new SqliteTable(dir.path('catalog.db'));
      expect(await collect(table, { index: 'gsi1', partition: 'I' })).toEqual([
        { pk: 'P', sk: 'A', gsi1pk: 'I', gsi1sk: '1', n: 1 },
        { pk: 'P', sk: 'B', gsi1pk: 'I', gsi1sk: '2', n: 2 },
      ]);
      table.close();
    } finally {
      await dir.remove();
    }
  });

  it('keeps conditional writes atomic across processes on the same file', async () => {
    const dir = await tempDir();
    const file = dir.path('catalog.db');
    const rounds = 150;
    try {
      new SqliteTable(file).close();
      const writer = fileURLToPath(new URL('./sqlite-writer.ts', import.meta.url));
      const run = (owner: string) => promisify(execFile)(process.execPath, [writer, file, owner, String(rounds)]);
      const results = await Promise.all(['w1', 'w2', 'w3'].map(run));
      const wins = results.map((r) => (JSON.parse(r.stdout) as { won: number }).won);
      const table = new SqliteTable(file);
      expect((await table.get({ pk: 'COUNTER', sk: 'C' }))!.n).toBe(3 * rounds);
      const claims = await collect(table, { partition: 'CLAIM' });
      expect(claims).toHaveLength(rounds);
      expect(wins.reduce((a, b) => a + b, 0)).toBe(rounds);
      for (const [i, owner] of ['w1', 'w2', 'w3'].entries()) expect(claims.filter((c) => c.owner === owner)).toHaveLength(wins[i]!);
      table.close();
    } finally {
      await dir.remove();
    }
  });
});

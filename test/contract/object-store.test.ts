// The ObjectStore contract, run against every adapter: the filesystem store, S3 (on the run's emulator,
// in a fresh bucket) and the shared in-memory double.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import { S3ObjectStore } from '../../lib/aws/s3-object-store.ts';
import { FsObjectStore } from '../../lib/embedded/fs-object-store.ts';
import { ObjectNotFoundError } from '../../lib/engine/ports.ts';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { mapLimit } from '../../lib/util/concurrency.ts';
import { MemoryObjectStore } from '../support/memory-ports.ts';

interface Subject {
  store: ObjectStore;
  close(): Promise<void>;
}

const adapters: Array<[string, () => Promise<Subject>]> = [
  [
    'FsObjectStore',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'openvbs-objects-'));
      return { store: new FsObjectStore(join(dir, 'objects')), close: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
  [
    'S3ObjectStore',
    async () => {
      const { s3 } = createClients();
      const bucket = `contract-${randomBytes(6).toString('hex')}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return { store: new S3ObjectStore(s3, bucket), close: async () => s3.destroy() };
    },
  ],
  ['MemoryObjectStore', async () => ({ store: new MemoryObjectStore(), close: async () => {} })],
];

async function listed(store: ObjectStore, prefix: string) {
  const out: Array<{ key: string; size: number }> = [];
  for await (const entry of store.list(prefix)) out.push(entry);
  return out;
}

describe.each(adapters)('%s', (_name, open) => {
  let subject: Subject;
  let store: ObjectStore;
  beforeAll(async () => {
    subject = await open();
    store = subject.store;
  });
  afterAll(() => subject.close());

  /** A key no other test uses. */
  const fresh = (name = 'obj') => `t/${randomBytes(4).toString('hex')}/${name}`;

  it('stores an object whole and reads it back, a copy the caller may reuse', async () => {
    const key = fresh();
    const body = randomBytes(10_000);
    await store.put(key, body);
    body.fill(0); // the store did not keep the caller's buffer
    const got = await store.get(key);
    expect(got.length).toBe(10_000);
    expect(got.equals(body)).toBe(false);
    expect(await store.exists(key)).toBe(true);
    await store.put(`${key}-empty`, new Uint8Array(0));
    expect((await store.get(`${key}-empty`)).length).toBe(0);
  });

  it('overwrites an object', async () => {
    const key = fresh();
    await store.put(key, Buffer.from('first version, longer'));
    await store.put(key, Buffer.from('second'));
    expect((await store.get(key)).toString()).toBe('second');
    expect(await listed(store, key)).toEqual([{ key, size: 6 }]);
  });

  it('reads ranges, at the start, inside and at the very end', async () => {
    const key = fresh();
    const body = randomBytes(5000);
    await store.put(key, body);
    expect(await store.getRange(key, 0, 10)).toEqual(body.subarray(0, 10));
    expect(await store.getRange(key, 1234, 2000)).toEqual(body.subarray(1234, 3234));
    expect(await store.getRange(key, 4990, 10)).toEqual(body.subarray(4990));
    expect(await store.getRange(key, 0, 5000)).toEqual(body);
  });

  it('reads a range straight into the caller buffer and returns a view of it', async () => {
    const key = fresh();
    const body = randomBytes(3000);
    await store.put(key, body);
    const into = Buffer.alloc(4096, 0xee);
    const got = await store.getRange(key, 1000, 2000, into);
    expect(got).toEqual(body.subarray(1000, 3000));
    expect(got.buffer).toBe(into.buffer);
    expect(got.byteOffset).toBe(into.byteOffset);
    expect(into.subarray(0, 2000)).toEqual(body.subarray(1000, 3000));
    expect(into[2000]).toBe(0xee); // nothing written past the range
  });

  it('fails a range that runs past the end of the object', async () => {
    const key = fresh();
    await store.put(key, randomBytes(100));
    await expect(store.getRange(key, 90, 20)).rejects.toThrow(/short read/);
    await expect(store.getRange(key, 90, 20, Buffer.alloc(20))).rejects.toThrow(/short read/);
    await expect(store.getRange(key, 100, 1)).rejects.toThrow();
  });

  it('reports a missing object as ObjectNotFoundError, and as not existing', async () => {
    const key = fresh('missing');
    await expect(store.get(key)).rejects.toThrow(ObjectNotFoundError);
    await expect(store.getRange(key, 0, 1)).rejects.toThrow(ObjectNotFoundError);
    await expect(store.getRange(key, 0, 1, Buffer.alloc(1))).rejects.toThrow(ObjectNotFoundError);
    const err = await store.get(key).catch((e: unknown) => e);
    expect((err as ObjectNotFoundError).key).toBe(key);
    expect(await store.exists(key)).toBe(false);
    // a "folder" of other objects is not an object either
    await store.put(`${key}/inner`, Buffer.from('x'));
    expect(await store.exists(key)).toBe(false);
    await expect(store.get(key)).rejects.toThrow(ObjectNotFoundError);
  });

  it('creates an object only if absent, leaving an existing one unchanged', async () => {
    const key = fresh();
    expect(await store.putIfAbsent(key, Buffer.from('first'))).toBe(true);
    expect(await store.putIfAbsent(key, Buffer.from('second, longer'))).toBe(false);
    expect((await store.get(key)).toString()).toBe('first');
    expect(await listed(store, key)).toEqual([{ key, size: 5 }]);
  });

  it('lets exactly one of many concurrent create-if-absent calls win', async () => {
    const key = fresh();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.putIfAbsent(key, Buffer.from(`writer ${i}`))));
    expect(results.filter(Boolean).length).toBe(1);
    expect((await store.get(key)).toString()).toBe(`writer ${results.indexOf(true)}`);
  });

  it('lists by prefix in key order, the prefix ending mid-name, nested keys included', async () => {
    const base = fresh('');
    // S3 orders keys by their bytes: "-" and "." sort before "/", "0" after it. (No key is also a
    // "folder" of others: a filesystem store cannot hold both "a" and "a/x".)
    const keys = ['a-b', 'a.b', 'a/x', 'a/y/z', 'a0', 'ab', 'b/c', 'ba'].map((k) => base + k);
    for (const [i, key] of [...keys].reverse().entries()) await store.put(key, randomBytes(keys.length - i));
    const entry = (k: string) => ({ key: base + k, size: keys.indexOf(base + k) + 1 });
    const expected = (ks: string[]) => ks.map(entry);
    expect(await listed(store, base)).toEqual(expected(['a-b', 'a.b', 'a/x', 'a/y/z', 'a0', 'ab', 'b/c', 'ba']));
    expect(await listed(store, `${base}a`)).toEqual(expected(['a-b', 'a.b', 'a/x', 'a/y/z', 'a0', 'ab']));
    expect(await listed(store, `${base}a/`)).toEqual(expected(['a/x', 'a/y/z']));
    expect(await listed(store, `${base}a/y`)).toEqual(expected(['a/y/z']));
    expect(await listed(store, `${base}b`)).toEqual(expected(['b/c', 'ba']));
    expect(await listed(store, `${base}a/y/z`)).toEqual(expected(['a/y/z']));
    expect(await listed(store, `${base}c`)).toEqual([]);
    expect(await listed(store, `${base}nothing/here/`)).toEqual([]);
  });

  it('lists more than one page (over 1000 objects) in order', async () => {
    const base = fresh('many/');
    const keys = Array.from({ length: 1105 }, (_, i) => `${base}${String(i).padStart(4, '0')}`);
    await mapLimit(keys, 32, (key) => store.put(key, Buffer.from('z')));
    const all = await listed(store, base);
    expect(all.length).toBe(1105);
    expect(all.map((e) => e.key)).toEqual(keys);
    expect(all.every((e) => e.size === 1)).toBe(true);
    expect((await listed(store, `${base}1`)).map((e) => e.key)).toEqual(keys.slice(1000));
  });

  it('deletes objects, missing keys included, and only those', async () => {
    const base = fresh('del/');
    await store.put(`${base}a`, Buffer.from('a'));
    await store.put(`${base}b/c`, Buffer.from('c'));
    await store.put(`${base}keep`, Buffer.from('k'));
    await store.delete([`${base}a`, `${base}b/c`, `${base}never-was`, `${base}b`]);
    expect(await store.exists(`${base}a`)).toBe(false);
    await expect(store.get(`${base}b/c`)).rejects.toThrow(ObjectNotFoundError);
    expect(await listed(store, base)).toEqual([{ key: `${base}keep`, size: 1 }]);
    await store.delete([]);
    // a deleted key can be created again
    expect(await store.putIfAbsent(`${base}a`, Buffer.from('again'))).toBe(true);
  });
});

describe('FsObjectStore on disk', () => {
  let dir: string;
  let root: string;
  let store: FsObjectStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openvbs-fs-'));
    root = join(dir, 'objects');
    store = new FsObjectStore(root);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps each object in the file its key names, files 0600 in folders 0700, no temporary file left', async () => {
    await store.put('packs/d1/ab/abcdef', Buffer.from('pack'));
    expect(await store.putIfAbsent('packs/d1/ab/second', Buffer.from('x'))).toBe(true);
    const file = await stat(join(root, 'packs', 'd1', 'ab', 'abcdef'));
    expect(file.mode & 0o777).toBe(0o600);
    expect((await stat(join(root, 'packs', 'd1', 'ab', 'second'))).mode & 0o777).toBe(0o600);
    for (const folder of [root, join(root, 'packs'), join(root, 'packs', 'd1'), join(root, 'packs', 'd1', 'ab')]) {
      expect((await stat(folder)).mode & 0o777, folder).toBe(0o700);
    }
    expect((await readdir(join(root, 'packs', 'd1', 'ab'))).sort()).toEqual(['abcdef', 'second']);
    expect(await store.putIfAbsent('packs/d1/ab/second', Buffer.from('y'))).toBe(false);
    expect((await readdir(join(root, 'packs', 'd1', 'ab'))).sort()).toEqual(['abcdef', 'second']);
  });

  it('never lists or reads a temporary file a crash left behind', async () => {
    await store.put('crash/kept', Buffer.from('whole'));
    // what a crash between writing the temporary file and renaming it leaves
    await writeFile(join(root, 'crash', '.openvbs-tmp-0123456789abcdef'), 'partial');
    await mkdir(join(root, 'crash', 'sub'), { recursive: true });
    await writeFile(join(root, 'crash', 'sub', '.openvbs-tmp-fedcba9876543210'), 'partial');
    expect(await listed(store, 'crash/')).toEqual([{ key: 'crash/kept', size: 5 }]);
    expect(await listed(store, 'crash/.')).toEqual([]);
    expect(await listed(store, '')).toContainEqual({ key: 'crash/kept', size: 5 });
    await expect(store.get('crash/.openvbs-tmp-0123456789abcdef')).rejects.toThrow(/reserved/);
    await expect(store.exists('crash/sub/.openvbs-tmp-fedcba9876543210')).rejects.toThrow(/reserved/);
  });

  it.each([
    ['..', /"\.\."/],
    ['../outside', /"\.\."/],
    ['a/../../outside', /"\.\."/],
    ['/etc/passwd', /empty/],
    ['a//b', /empty/],
    ['a/', /empty/],
    ['', /empty/],
    ['./a', /"\."/],
    ['a/\0b', /NUL/],
    ['.openvbs-tmp-x', /reserved/],
  ])('refuses the key %j', async (key, message) => {
    await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(message);
    await expect(store.putIfAbsent(key, Buffer.from('x'))).rejects.toThrow(message);
    await expect(store.get(key)).rejects.toThrow(message);
    await expect(store.getRange(key, 0, 1)).rejects.toThrow(message);
    await expect(store.exists(key)).rejects.toThrow(message);
    await expect(store.delete([key])).rejects.toThrow(message);
    expect(await readdir(dir)).toEqual(['objects']); // nothing written beside the root
  });

  it('refuses a listing prefix that leaves the root', async () => {
    await expect(listed(store, '../')).rejects.toThrow(/"\.\."/);
    await expect(listed(store, '/etc/')).rejects.toThrow(/empty/);
  });

  it('says clearly when a key needs a folder where an object is, and the reverse', async () => {
    await store.put('clash/a', Buffer.from('object'));
    await expect(store.put('clash/a/b', Buffer.from('x'))).rejects.toThrow(/clashes with an existing object or folder/);
    await store.put('clash/dir/x', Buffer.from('x'));
    await expect(store.put('clash/dir', Buffer.from('x'))).rejects.toThrow(/clashes/);
    await expect(store.putIfAbsent('clash/dir', Buffer.from('x'))).rejects.toThrow(/clashes/);
    expect(await listed(store, 'clash/')).toEqual([
      { key: 'clash/a', size: 6 },
      { key: 'clash/dir/x', size: 1 },
    ]);
  });
});

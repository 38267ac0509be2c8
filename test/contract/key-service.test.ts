// The KeyService contract, run against every adapter: local key files, KMS (on the run's emulator) and
// the shared in-memory double.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import { KmsKeyService } from '../../lib/aws/kms-key-service.ts';
import { LocalKeyService } from '../../lib/embedded/local-key-service.ts';
import { KeyAccessError } from '../../lib/engine/ports.ts';
import type { KeyInfo, KeyService } from '../../lib/engine/ports.ts';
import { MemoryKeyService } from '../support/memory-ports.ts';

interface Subject {
  keys: KeyService;
  close(): Promise<void>;
}

const adapters: Array<[string, () => Promise<Subject>]> = [
  [
    'LocalKeyService',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'openvbs-keys-'));
      return { keys: new LocalKeyService(join(dir, 'keys')), close: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
  [
    'KmsKeyService',
    async () => {
      const { kms } = createClients();
      return { keys: new KmsKeyService(kms), close: async () => kms.destroy() };
    },
  ],
  ['MemoryKeyService', async () => ({ keys: new MemoryKeyService(), close: async () => {} })],
];

const unique = () => randomBytes(5).toString('hex');

describe.each(adapters)('%s', (_name, open) => {
  let subject: Subject;
  let keys: KeyService;
  let keyA: KeyInfo;
  let keyB: KeyInfo;
  const context = { project_id: 'p-1', domain_id: 'd-1' };

  beforeAll(async () => {
    subject = await open();
    keys = subject.keys;
    keyA = await keys.createKey({ description: 'contract key A' });
    keyB = await keys.createKey({ description: 'contract key B' });
  });
  afterAll(() => subject.close());

  it('wraps a fresh 256-bit data key and unwraps it under the same key and context, named by id or ARN', async () => {
    const { plaintext, wrapped } = await keys.generateDataKey(keyA.arn, context);
    expect(plaintext.length).toBe(32);
    expect(wrapped.includes(plaintext)).toBe(false);
    expect(await keys.unwrap(keyA.arn, wrapped, context)).toEqual(plaintext);
    expect(await keys.unwrap(keyA.keyId, wrapped, { domain_id: 'd-1', project_id: 'p-1' })).toEqual(plaintext); // order does not matter
    const other = await keys.generateDataKey(keyA.keyId, context);
    expect(other.plaintext.equals(plaintext)).toBe(false);
  });

  it('refuses another encryption context', async () => {
    const { wrapped } = await keys.generateDataKey(keyA.arn, context);
    const wrongs: Array<Record<string, string>> = [{ project_id: 'p-2', domain_id: 'd-1' }, { project_id: 'p-1' }, { ...context, extra: 'x' }, {}];
    for (const wrong of wrongs) {
      await expect(keys.unwrap(keyA.arn, wrapped, wrong), JSON.stringify(wrong)).rejects.toThrow(KeyAccessError);
    }
  });

  it('refuses a blob wrapped by another key', async () => {
    const { wrapped } = await keys.generateDataKey(keyA.arn, context);
    await expect(keys.unwrap(keyB.arn, wrapped, context)).rejects.toThrow(KeyAccessError);
  });

  it('refuses a damaged blob: any flipped byte, truncated, or empty', async () => {
    const { wrapped } = await keys.generateDataKey(keyA.arn, context);
    for (const at of [0, 1, Math.floor(wrapped.length / 2), wrapped.length - 1]) {
      const bad = Buffer.from(wrapped);
      bad[at] = bad[at]! ^ 0x01;
      await expect(keys.unwrap(keyA.arn, bad, context), `byte ${at}`).rejects.toThrow(KeyAccessError);
    }
    await expect(keys.unwrap(keyA.arn, wrapped.subarray(0, wrapped.length - 1), context)).rejects.toThrow(KeyAccessError);
    await expect(keys.unwrap(keyA.arn, Buffer.alloc(0), context)).rejects.toThrow(KeyAccessError);
  });

  it('refuses an unknown key, by id, ARN or alias', async () => {
    const { wrapped } = await keys.generateDataKey(keyA.arn, context);
    const unknownArn = keyA.arn.replace(keyA.keyId, randomUUID());
    for (const name of [randomUUID(), unknownArn, `alias/none-${unique()}`]) {
      await expect(keys.generateDataKey(name, context), name).rejects.toThrow(KeyAccessError);
      await expect(keys.unwrap(name, wrapped, context), name).rejects.toThrow(KeyAccessError);
    }
  });

  it('creates keys and describes them by id, ARN and alias', async () => {
    const owner = `p-${unique()}`;
    const alias = `alias/contract-${unique()}`;
    const created = await keys.createKey({ owner, alias, description: 'a customer key' });
    expect(created).toMatchObject({ alias, description: 'a customer key', enabled: true, owner });
    expect(created.arn.endsWith(`key/${created.keyId}`)).toBe(true);
    expect(Number.isNaN(Date.parse(created.createdAt))).toBe(false);
    for (const name of [created.keyId, created.arn, alias]) expect(await keys.describeKey(name), name).toEqual(created);

    const plain = await keys.createKey({});
    expect(plain.owner).toBeUndefined();
    expect(plain.alias).toBeUndefined();
    expect(await keys.describeKey(plain.arn)).toEqual(plain);

    // a key made through its alias wraps and unwraps like any other
    const { plaintext, wrapped } = await keys.generateDataKey(alias, context);
    expect(await keys.unwrap(created.arn, wrapped, context)).toEqual(plaintext);
  });

  it('accepts an alias without its alias/ prefix', async () => {
    const name = `contract-${unique()}`;
    const created = await keys.createKey({ alias: name });
    expect(created.alias).toBe(`alias/${name}`);
    expect((await keys.describeKey(`alias/${name}`))?.keyId).toBe(created.keyId);
  });

  it('refuses a duplicate alias, creating no key', async () => {
    const owner = `p-${unique()}`;
    const alias = `alias/contract-${unique()}`;
    const first = await keys.createKey({ owner, alias });
    await expect(keys.createKey({ owner, alias })).rejects.toThrow(/already exists/);
    expect(await keys.listKeys(owner)).toEqual([first]);
    expect((await keys.describeKey(alias))?.keyId).toBe(first.keyId);
  });

  it('describes an unknown key as undefined', async () => {
    expect(await keys.describeKey(randomUUID())).toBeUndefined();
    expect(await keys.describeKey(keyA.arn.replace(keyA.keyId, randomUUID()))).toBeUndefined();
    expect(await keys.describeKey(`alias/none-${unique()}`)).toBeUndefined();
    expect(await keys.describeKey('not-a-key')).toBeUndefined();
  });

  it('lists the keys an owner created, oldest first, and no one else’s', async () => {
    const [ownerA, ownerB] = [`p-${unique()}`, `p-${unique()}`];
    const a1 = await keys.createKey({ owner: ownerA, description: 'a1' });
    const b1 = await keys.createKey({ owner: ownerB, description: 'b1' });
    const a2 = await keys.createKey({ owner: ownerA, alias: `contract-${unique()}` });
    const listedA = await keys.listKeys(ownerA);
    expect(new Set(listedA.map((k) => k.keyId))).toEqual(new Set([a1.keyId, a2.keyId]));
    expect(listedA).toContainEqual(a1);
    expect(listedA).toContainEqual(a2);
    expect(listedA[0]!.createdAt <= listedA[1]!.createdAt).toBe(true);
    expect(await keys.listKeys(ownerB)).toEqual([b1]);
    expect(await keys.listKeys(`p-${unique()}`)).toEqual([]);
  });
});

describe('LocalKeyService on disk', () => {
  let dir: string;
  let keysDir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openvbs-keys-'));
    keysDir = join(dir, 'keys');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps each key in its own file of mode 0600, in a folder of mode 0700, and nothing else', async () => {
    const keys = new LocalKeyService(keysDir);
    const key = await keys.createKey({ owner: 'p-1', alias: 'on-disk' });
    expect((await stat(keysDir)).mode & 0o777).toBe(0o700);
    expect((await readdir(keysDir)).sort()).toEqual([`${key.keyId}.json`, `${key.keyId}.key`]);
    for (const name of await readdir(keysDir)) expect((await stat(join(keysDir, name))).mode & 0o777, name).toBe(0o600);
    expect((await readFile(join(keysDir, `${key.keyId}.key`))).length).toBe(32);
  });

  it('keeps keys across a new service on the same folder: they still unwrap what they wrapped', async () => {
    const first = new LocalKeyService(keysDir);
    const key = await first.createKey({ owner: 'p-restart', alias: 'restart', description: 'survives' });
    const context = { project_id: 'p-restart' };
    const { plaintext, wrapped } = await first.generateDataKey('alias/restart', context);

    const second = new LocalKeyService(keysDir);
    expect(await second.describeKey(key.arn)).toEqual(key);
    expect(await second.listKeys('p-restart')).toEqual([key]);
    expect(await second.unwrap(key.keyId, wrapped, context)).toEqual(plaintext);
    await expect(second.createKey({ alias: 'restart' })).rejects.toThrow(/already exists/);
  });

  it('refuses a disabled key, as KMS does', async () => {
    const keys = new LocalKeyService(keysDir);
    const key = await keys.createKey({ owner: 'p-disabled' });
    const { wrapped } = await keys.generateDataKey(key.arn, {});
    const metadata = join(keysDir, `${key.keyId}.json`);
    await writeFile(metadata, JSON.stringify({ ...JSON.parse(await readFile(metadata, 'utf8')), enabled: false }));
    expect((await keys.describeKey(key.keyId))?.enabled).toBe(false);
    await expect(keys.generateDataKey(key.arn, {})).rejects.toThrow(/disabled/);
    await expect(keys.unwrap(key.arn, wrapped, {})).rejects.toThrow(KeyAccessError);
  });

  it('binds the context unambiguously: the same characters split into other names and values do not unwrap', async () => {
    // (moto's KMS concatenates names and values without lengths, so this holds on AWS but not on the emulator)
    const keys = new LocalKeyService(keysDir);
    const key = await keys.createKey({});
    const { wrapped } = await keys.generateDataKey(key.arn, { domain_id: 'd-1', project_id: 'p-1' });
    await expect(keys.unwrap(key.arn, wrapped, { domain_i: 'dd-1project_idp-1' })).rejects.toThrow(KeyAccessError);
    await expect(keys.unwrap(key.arn, wrapped, { domain_id: 'd-1project_idp-1' })).rejects.toThrow(KeyAccessError);
  });

  it('refuses an invalid alias', async () => {
    const keys = new LocalKeyService(keysDir);
    for (const alias of ['', 'alias/', 'has space', 'alias/aws/reserved', '../escape']) {
      await expect(keys.createKey({ alias }), alias).rejects.toThrow(/invalid key alias/);
    }
  });
});

describe('MemoryKeyService', () => {
  it('refuses a disabled key until it is enabled again', async () => {
    const keys = new MemoryKeyService();
    const key = await keys.createKey({});
    const { plaintext, wrapped } = await keys.generateDataKey(key.arn, {});
    keys.setEnabled(key.keyId, false);
    await expect(keys.unwrap(key.arn, wrapped, {})).rejects.toThrow(KeyAccessError);
    keys.setEnabled(key.keyId, true);
    expect(await keys.unwrap(key.arn, wrapped, {})).toEqual(plaintext);
  });
});

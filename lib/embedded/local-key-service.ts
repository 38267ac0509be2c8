// KeyService on key files, for local mode. In `dir` (mode 0700), each master key is two files (mode 0600):
//   <id>.key   the random 256-bit key
//   <id>.json  its KeyInfo; the key exists once this is written
// Both are written atomically (temp file, fsync, rename). Data keys are wrapped as data-key-wrap.ts describes.
import { randomUUID, randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyAccessError } from '../engine/ports.ts';
import type { KeyInfo, KeyService } from '../engine/ports.ts';
import { MASTER_KEY_BYTES, aliasName, generateWrappedDataKey, isKeyId, unwrapDataKey } from './data-key-wrap.ts';
import { makeFolder, replaceFile } from './durable-file.ts';

export const LOCAL_KEY_ARN_PREFIX = 'arn:openvbs:kms:local:000000000000:key/';

const METADATA = '.json';
const MATERIAL = '.key';

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class LocalKeyService implements KeyService {
  readonly dir: string;
  /** Key creation runs one at a time, so an alias check and the write it guards are not interleaved. */
  private creating: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
  }

  async generateDataKey(kmsKeyId: string, context: Record<string, string>): Promise<{ plaintext: Buffer; wrapped: Buffer }> {
    const { info, material } = await this.usableKey(kmsKeyId);
    return generateWrappedDataKey(material, info.keyId, context);
  }

  async unwrap(kmsKeyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const { info, material } = await this.usableKey(kmsKeyId);
    return unwrapDataKey(material, info.keyId, wrapped, context);
  }

  createKey(options: { owner?: string; alias?: string; description?: string }): Promise<KeyInfo> {
    const created = this.creating.then(() => this.create(options));
    this.creating = created.catch(() => {});
    return created;
  }

  async describeKey(keyId: string): Promise<KeyInfo | undefined> {
    if (keyId.startsWith('alias/')) return (await this.allKeys()).find((k) => k.alias === keyId);
    const id = keyId.startsWith(LOCAL_KEY_ARN_PREFIX) ? keyId.slice(LOCAL_KEY_ARN_PREFIX.length) : keyId;
    if (!isKeyId(id)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.dir, id + METADATA), 'utf8')) as KeyInfo;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async listKeys(owner: string): Promise<KeyInfo[]> {
    return (await this.allKeys()).filter((k) => k.owner === owner);
  }

  private async create(options: { owner?: string; alias?: string; description?: string }): Promise<KeyInfo> {
    const alias = options.alias === undefined ? undefined : aliasName(options.alias);
    if (alias && (await this.describeKey(alias))) throw new Error(`alias ${alias} already exists`);
    await makeFolder(this.dir);
    const keyId = randomUUID();
    const info: KeyInfo = {
      keyId,
      arn: LOCAL_KEY_ARN_PREFIX + keyId,
      alias,
      description: options.description,
      enabled: true,
      owner: options.owner,
      createdAt: new Date().toISOString(),
    };
    await replaceFile(join(this.dir, keyId + MATERIAL), randomBytes(MASTER_KEY_BYTES));
    await replaceFile(join(this.dir, keyId + METADATA), JSON.stringify(info, null, 2) + '\n');
    return info;
  }

  /** Every key, oldest first. */
  private async allKeys(): Promise<KeyInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    const ids = names.filter((n) => n.endsWith(METADATA)).map((n) => n.slice(0, -METADATA.length)).filter(isKeyId);
    const keys = (await Promise.all(ids.map((id) => this.describeKey(id)))).filter((k) => k !== undefined);
    return keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId));
  }

  /** The key named by id, ARN or alias, with its material; KeyAccessError when unknown or disabled. */
  private async usableKey(name: string): Promise<{ info: KeyInfo; material: Buffer }> {
    const info = await this.describeKey(name);
    if (!info) throw new KeyAccessError(`key ${name} does not exist`);
    if (!info.enabled) throw new KeyAccessError(`key ${info.arn} is disabled`);
    const material = await readFile(join(this.dir, info.keyId + MATERIAL));
    if (material.length !== MASTER_KEY_BYTES) throw new Error(`key file of ${info.keyId} is damaged (${material.length} bytes)`);
    return { info, material };
  }
}

// In-memory doubles of the engine's ports, shared by unit tests and the benchmark, and a fault-injecting
// ObjectStore wrapper. The doubles keep the adapters' semantics (the contract suites run them too):
// copies in and out, ObjectNotFoundError, short ranges fail, listing in key order, real AES-GCM wrapping.
import { randomUUID, randomBytes } from 'node:crypto';
import { MASTER_KEY_BYTES, aliasName, generateWrappedDataKey, unwrapDataKey } from '../../lib/embedded/data-key-wrap.ts';
import { KeyAccessError, ObjectNotFoundError } from '../../lib/engine/ports.ts';
import type { ChunkIndex, ChunkLocation, KeyInfo, KeyService, ObjectStore } from '../../lib/engine/ports.ts';

export class MemoryObjectStore implements ObjectStore {
  /** The stored objects; tests may read them, or change one to simulate damage. */
  readonly objects = new Map<string, Buffer>();

  async put(key: string, body: Uint8Array): Promise<void> {
    this.objects.set(key, Buffer.from(body)); // a copy: the caller may reuse `body`
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    if (this.objects.has(key)) return false;
    this.objects.set(key, Buffer.from(body));
    return true;
  }

  async get(key: string): Promise<Buffer> {
    return Buffer.from(this.stored(key));
  }

  async getRange(key: string, start: number, length: number, into?: Buffer): Promise<Buffer> {
    const obj = this.stored(key);
    if (into && into.length < length) throw new RangeError(`buffer of ${into.length} bytes is too small for ${length} bytes of ${key}`);
    const got = Math.max(0, Math.min(length, obj.length - start));
    if (got !== length) throw new Error(`short read of ${key}: wanted ${length} bytes at ${start}, got ${got}`);
    const out = into ?? Buffer.allocUnsafe(length);
    obj.copy(out, 0, start, start + length);
    return out.subarray(0, length);
  }

  async exists(key: string): Promise<boolean> {
    return this.objects.has(key);
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix));
    keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const key of keys) {
      const obj = this.objects.get(key);
      if (obj) yield { key, size: obj.length };
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) this.objects.delete(key);
  }

  private stored(key: string): Buffer {
    const obj = this.objects.get(key);
    if (!obj) throw new ObjectNotFoundError(key);
    return obj;
  }
}

export class MemoryChunkIndex implements ChunkIndex {
  private readonly domains = new Map<string, Map<string, ChunkLocation>>();

  async lookup(domainId: string, ids: string[]): Promise<Map<string, ChunkLocation>> {
    const domain = this.domain(domainId);
    const found = new Map<string, ChunkLocation>();
    for (const id of ids) {
      const location = domain.get(id);
      if (location) found.set(id, { ...location });
    }
    return found;
  }

  async record(domainId: string, entries: Array<{ id: string; location: ChunkLocation }>): Promise<void> {
    let domain = this.domains.get(domainId);
    if (!domain) this.domains.set(domainId, (domain = new Map()));
    for (const e of entries) domain.set(e.id, { ...e.location });
  }

  /** The chunk locations recorded in one domain (empty when none). */
  domain(domainId: string): ReadonlyMap<string, ChunkLocation> {
    return this.domains.get(domainId) ?? new Map();
  }
}

const MEMORY_KEY_ARN_PREFIX = 'arn:openvbs:kms:memory:000000000000:key/';

/** KeyService in memory, wrapping data keys exactly as the local key service does. */
export class MemoryKeyService implements KeyService {
  private readonly keys: Array<{ info: KeyInfo; material: Buffer }> = [];

  async generateDataKey(kmsKeyId: string, context: Record<string, string>): Promise<{ plaintext: Buffer; wrapped: Buffer }> {
    const { info, material } = this.usableKey(kmsKeyId);
    return generateWrappedDataKey(material, info.keyId, context);
  }

  async unwrap(kmsKeyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const { info, material } = this.usableKey(kmsKeyId);
    return unwrapDataKey(material, info.keyId, wrapped, context);
  }

  async createKey(options: { owner?: string; alias?: string; description?: string }): Promise<KeyInfo> {
    const alias = options.alias === undefined ? undefined : aliasName(options.alias);
    if (alias && this.find(alias)) throw new Error(`alias ${alias} already exists`);
    const keyId = randomUUID();
    const info: KeyInfo = {
      keyId,
      arn: MEMORY_KEY_ARN_PREFIX + keyId,
      alias,
      description: options.description,
      enabled: true,
      owner: options.owner,
      createdAt: new Date().toISOString(),
    };
    this.keys.push({ info, material: randomBytes(MASTER_KEY_BYTES) });
    return { ...info };
  }

  async describeKey(keyId: string): Promise<KeyInfo | undefined> {
    const key = this.find(keyId);
    return key && { ...key.info };
  }

  async listKeys(owner: string): Promise<KeyInfo[]> {
    return this.keys.filter((k) => k.info.owner === owner).map((k) => ({ ...k.info })); // kept in creation order
  }

  /** Disables or enables a key, as KMS DisableKey / EnableKey do. */
  setEnabled(keyId: string, enabled: boolean): void {
    const key = this.find(keyId);
    if (!key) throw new Error(`key ${keyId} does not exist`);
    key.info.enabled = enabled;
  }

  private find(name: string) {
    return this.keys.find(({ info }) => info.keyId === name || info.arn === name || info.alias === name);
  }

  private usableKey(name: string) {
    const key = this.find(name);
    if (!key) throw new KeyAccessError(`key ${name} does not exist`);
    if (!key.info.enabled) throw new KeyAccessError(`key ${key.info.arn} is disabled`);
    return key;
  }
}

export type ObjectStoreMethod = 'put' | 'putIfAbsent' | 'get' | 'getRange' | 'exists' | 'list' | 'delete';

export interface Fault {
  method: ObjectStoreMethod;
  /** Fail only the n-th matching call (1-based, counted from when the fault was added); every matching call when absent. */
  call?: number;
  /** Fail only calls on keys it accepts (for list: the prefix; for delete: any of the keys). */
  key?: (key: string) => boolean;
  /** The error to throw; by default an Error naming the method and key. */
  error?: Error | ((method: ObjectStoreMethod, key: string) => Error);
  /** 'after': the call reaches the store, then fails (a write that landed but whose answer was lost). Default 'before'. */
  when?: 'before' | 'after';
}

/** Wraps any ObjectStore, counts calls per method and fails the calls the added faults select. */
export class FaultyObjectStore implements ObjectStore {
  readonly inner: ObjectStore;
  /** Calls per method, failed ones included. */
  readonly calls: Record<ObjectStoreMethod, number> = { put: 0, putIfAbsent: 0, get: 0, getRange: 0, exists: 0, list: 0, delete: 0 };
  private faults: Array<Fault & { seen: number }> = [];

  constructor(inner: ObjectStore) {
    this.inner = inner;
  }

  /** Adds a fault; returns this, for chaining. */
  failOn(fault: Fault): this {
    this.faults.push({ ...fault, seen: 0 });
    return this;
  }

  clearFaults(): void {
    this.faults = [];
  }

  put(key: string, body: Uint8Array): Promise<void> {
    return this.call('put', [key], () => this.inner.put(key, body));
  }

  putIfAbsent(key: string, body: Uint8Array): Promise<boolean> {
    return this.call('putIfAbsent', [key], () => this.inner.putIfAbsent(key, body));
  }

  get(key: string): Promise<Buffer> {
    return this.call('get', [key], () => this.inner.get(key));
  }

  getRange(key: string, start: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.call('getRange', [key], () => this.inner.getRange(key, start, length, into));
  }

  exists(key: string): Promise<boolean> {
    return this.call('exists', [key], () => this.inner.exists(key));
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const entries = await this.call('list', [prefix], async () => this.inner.list(prefix));
    yield* entries;
  }

  delete(keys: string[]): Promise<void> {
    return this.call('delete', keys, () => this.inner.delete(keys));
  }

  private async call<T>(method: ObjectStoreMethod, keys: string[], run: () => Promise<T>): Promise<T> {
    this.calls[method]++;
    let fault: Fault | undefined;
    for (const f of this.faults) {
      if (f.method !== method || (f.key && !keys.some(f.key))) continue;
      f.seen++;
      if (f.call === undefined || f.call === f.seen) fault ??= f;
    }
    if (!fault) return run();
    const error = typeof fault.error === 'function' ? fault.error(method, keys[0] ?? '') : (fault.error ?? new Error(`injected fault: ${method} ${keys.join(', ')}`));
    if (fault.when === 'after') await run();
    throw error;
  }
}

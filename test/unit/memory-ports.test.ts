// The shared doubles' own behaviour beyond the port contracts: the fault-injecting store and the chunk index.
import { describe, expect, it } from 'vitest';
import { FaultyObjectStore, MemoryChunkIndex, MemoryObjectStore } from '../support/memory-ports.ts';

const body = (s: string) => Buffer.from(s);

async function keysOf(store: { list(prefix: string): AsyncIterable<{ key: string }> }, prefix = '') {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) keys.push(e.key);
  return keys;
}

describe('FaultyObjectStore', () => {
  it('passes calls through and counts them per method, failed calls included', async () => {
    const inner = new MemoryObjectStore();
    const store = new FaultyObjectStore(inner).failOn({ method: 'get', key: (k) => k === 'boom' });
    await store.put('a', body('1'));
    expect(await store.putIfAbsent('a', body('2'))).toBe(false);
    expect((await store.get('a')).toString()).toBe('1');
    await expect(store.get('boom')).rejects.toThrow('injected fault: get boom');
    expect((await store.getRange('a', 0, 1)).toString()).toBe('1');
    expect(await store.exists('a')).toBe(true);
    expect(await keysOf(store)).toEqual(['a']);
    await store.delete(['a']);
    expect(inner.objects.size).toBe(0);
    expect(store.calls).toEqual({ put: 1, putIfAbsent: 1, get: 2, getRange: 1, exists: 1, list: 1, delete: 1 });
  });

  it('fails only the n-th matching call, counted from when the fault was added', async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore());
    await store.put('before', body('x'));
    store.failOn({ method: 'put', call: 2, error: new Error('disk full') });
    await store.put('p1', body('x'));
    await expect(store.put('p2', body('x'))).rejects.toThrow('disk full');
    await store.put('p3', body('x'));
    expect(await keysOf(store)).toEqual(['before', 'p1', 'p3']);
  });

  it('counts the n-th call among the keys the predicate accepts', async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore()).failOn({ method: 'put', call: 2, key: (k) => k.startsWith('packs/') });
    await store.put('packs/1', body('x'));
    await store.put('manifests/1', body('x'));
    await expect(store.put('packs/2', body('x'))).rejects.toThrow('injected fault: put packs/2');
    await store.put('packs/3', body('x'));
    expect(await keysOf(store)).toEqual(['manifests/1', 'packs/1', 'packs/3']);
  });

  it('fails after the call reached the store when asked: the write landed, the answer was lost', async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore()).failOn({ method: 'put', when: 'after' });
    await expect(store.put('landed', body('x'))).rejects.toThrow(/injected fault/);
    expect(await store.exists('landed')).toBe(true);
  });

  it('builds the error from the method and key, fails listings and deletes by any key, and clears its faults', async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore())
      .failOn({ method: 'list', error: (method, key) => new Error(`${method} of ${key} throttled`) })
      .failOn({ method: 'delete', key: (k) => k === 'locked' });
    await store.put('free', body('x'));
    await expect(keysOf(store, 'f')).rejects.toThrow('list of f throttled');
    await expect(store.delete(['free', 'locked'])).rejects.toThrow(/injected fault: delete free, locked/);
    expect(await store.exists('free')).toBe(true); // failed before reaching the store
    store.clearFaults();
    await store.delete(['free', 'locked']);
    expect(await keysOf(store)).toEqual([]);
  });
});

describe('MemoryChunkIndex', () => {
  it('keeps each key domain apart and returns only the ids it knows', async () => {
    const index = new MemoryChunkIndex();
    await index.record('d1', [{ id: 'aa', location: { pack: 'p1', offset: 0, length: 10 } }]);
    await index.record('d2', [{ id: 'bb', location: { pack: 'p2', offset: 5, length: 7 } }]);
    expect(await index.lookup('d1', ['aa', 'bb'])).toEqual(new Map([['aa', { pack: 'p1', offset: 0, length: 10 }]]));
    expect(await index.lookup('d2', ['aa'])).toEqual(new Map());
    expect(index.domain('d2').get('bb')).toEqual({ pack: 'p2', offset: 5, length: 7 });
    expect(index.domain('none').size).toBe(0);
  });
});

// S3ObjectStore.getRange into a caller's buffer, where S3 itself cannot be made to misbehave: the SDK client is
// replaced (the only seam) by one whose response body is a stream this test controls.
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../lib/aws/s3-object-store.ts';

function storeAnswering(body: () => Readable): S3ObjectStore {
  const s3 = { send: async () => ({ Body: body() }) } as unknown as S3Client;
  return new S3ObjectStore(s3, 'bucket');
}

describe('S3ObjectStore.getRange into a buffer', () => {
  it('places every piece of the body in order', async () => {
    const pieces = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')];
    const into = Buffer.alloc(16, 0xff);
    const got = await storeAnswering(() => Readable.from(pieces)).getRange('k', 100, 10, into);
    expect(got.toString()).toBe('abcdefghij');
    expect(got.buffer).toBe(into.buffer);
    expect(into[10]).toBe(0xff); // nothing past the range
  });

  it('refuses a body longer than the range, without writing past it', async () => {
    const into = Buffer.alloc(12, 0xff);
    const store = storeAnswering(() => Readable.from([Buffer.alloc(6, 1), Buffer.alloc(6, 2)]));
    await expect(store.getRange('k', 0, 10, into)).rejects.toThrow(/returned more than the 10 bytes/);
    expect([...into.subarray(6)]).toEqual(Array(6).fill(0xff));
  });

  it('refuses a body that breaks off, and one that ends short', async () => {
    const broken = storeAnswering(
      () =>
        new Readable({
          read() {
            this.push(Buffer.alloc(4));
            this.destroy(new Error('socket hang up'));
          },
        }),
    );
    await expect(broken.getRange('k', 0, 10, Buffer.alloc(10))).rejects.toThrow(/socket hang up/);
    const short = storeAnswering(() => Readable.from([Buffer.alloc(4)]));
    await expect(short.getRange('k', 0, 10, Buffer.alloc(10))).rejects.toThrow(/short read/);
  });
});

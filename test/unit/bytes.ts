// Byte comparison for large buffers: vitest's deep equality walks Buffers element by element (slow at
// 512 KiB); compare length and SHA-256 instead, which also keeps failure messages short.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';

const fingerprint = (b: Uint8Array) => ({ length: b.byteLength, sha256: createHash('sha256').update(b).digest('hex') });

export function expectSameBytes(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  expect(fingerprint(actual), message).toEqual(fingerprint(expected));
}

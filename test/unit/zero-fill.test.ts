// zeroFill (aligned-memory.ts): zeros exactly [from, to), on ordinary and shared memory, across its 1 MiB copy size.
import { describe, expect, it } from 'vitest';
import { zeroFill } from '../../lib/util/aligned-memory.ts';

const MiB = 1024 * 1024;

function filled(size: number, shared: boolean): Buffer {
  const buf = shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.alloc(size);
  return buf.fill(0xab);
}

const zeroRun = (buf: Buffer, from: number, to: number) => buf.subarray(from, to).every((b) => b === 0);
const untouched = (buf: Buffer, from: number, to: number) => buf.subarray(from, to).every((b) => b === 0xab);

describe('zeroFill', () => {
  for (const shared of [false, true]) {
    it(`zeros only the range asked, across several copies (${shared ? 'shared' : 'ordinary'} memory)`, () => {
      const buf = filled(3 * MiB + 100, shared);
      const from = 7;
      const to = 2 * MiB + 4099; // more than two whole copies, ending mid-way
      zeroFill(buf, from, to);
      expect(untouched(buf, 0, from)).toBe(true);
      expect(zeroRun(buf, from, to)).toBe(true);
      expect(untouched(buf, to, buf.length)).toBe(true);
    });
  }

  it('zeros the whole buffer by default and does nothing for an empty range', () => {
    const buf = filled(MiB + 1, true);
    zeroFill(buf, 5, 5);
    expect(untouched(buf, 0, buf.length)).toBe(true);
    zeroFill(buf);
    expect(zeroRun(buf, 0, buf.length)).toBe(true);
  });
});

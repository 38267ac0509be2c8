// The byte schedule of young-generation collections that chunk work runs on (chunk-garbage.ts).
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { leftGarbage, sealedChunkGarbage } from '../../lib/engine/chunk-garbage.ts';

const MiB = 1024 * 1024;

describe('chunk garbage', () => {
  it('collects once 4 MiB have been left behind, not before', () => {
    leftGarbage(4 * MiB); // start from a fresh count, whatever earlier calls left
    expect(leftGarbage(3 * MiB)).toBe(false);
    expect(leftGarbage(1 * MiB)).toBe(true);
    expect(leftGarbage(1)).toBe(false);
  });

  it('counts a sealed chunk as twice its plaintext and its zstd context', () => {
    leftGarbage(4 * MiB);
    // 64 KiB sub-chunks count 640 KiB each: the seventh passes 4 MiB; a 4 MiB extent passes it alone.
    const subChunks = Array.from({ length: 7 }, () => sealedChunkGarbage(64 * 1024));
    expect(subChunks).toEqual([false, false, false, false, false, false, true]);
    expect(sealedChunkGarbage(4 * MiB)).toBe(true);
  });

  it('runs a young-generation collection of this thread when it says it collected', async () => {
    let minor = 0;
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      leftGarbage(4 * MiB);
      const collected = leftGarbage(4 * MiB);
      // gc entries arrive asynchronously
      await new Promise((r) => setTimeout(r, 50));
      expect(collected).toBe(true);
      expect(minor).toBeGreaterThanOrEqual(2);
    } finally {
      observer.disconnect();
    }
  });
});

// CPU-only measurements on in-memory blocks, no I/O: the chunk pipeline (HMAC-SHA256 id + zstd-1 +
// AES-256-GCM, as digestBlocks + sealBlocks) through ChunkPool with 1 worker and with all cores and on the
// main thread, each step alone on one thread, the restore direction (ChunkPool.open), PackWriter, and the
// incremental hot loop (read into recycled slots + digest). Medians of 3 after a warm-up.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setImmediate } from 'node:timers';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import type { DomainKeys } from '../../lib/engine/chunk-codec.ts';
import { SEAL_OVERHEAD, chunkId, deriveDomainKeys, isAllZero, openChunk, sealChunk } from '../../lib/engine/chunk-codec.ts';
import { digestBlocks, sealBlocks, sealCapacity } from '../../lib/engine/chunk-ops.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import type { Slot } from '../../lib/engine/chunk-pool.ts';
import { DEFAULT_ENGINE_CONFIG } from '../../lib/engine/engine.ts';
import { PackWriter } from '../../lib/engine/pack-writer.ts';
import type { ChunkIndex } from '../../lib/engine/ports.ts';
import { MemoryObjectStore } from '../../test/support/memory-ports.ts';
import { machineTicks, perPass, threadCpuDelta, threadTicks, trackPoolThreads } from './cpu-accounting.ts';
import type { ThreadCpu } from './cpu-accounting.ts';
import { MiB, median, rate } from './units.ts';

const BLOCK = DEFAULT_ENGINE_CONFIG.blockSize;
const CORES = availableParallelism();

/** Lets signal handlers and timers run between synchronous measurements (Ctrl-C stays responsive). */
const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Median MB/s of 3 timed passes over `blocks` (after one untimed warm-up pass over a few blocks). */
async function timeBlocks(blocks: Buffer[], fn: (b: Buffer, i: number) => void): Promise<number> {
  for (let i = 0; i < Math.min(16, blocks.length); i++) fn(blocks[i]!, i);
  const bytes = blocks.reduce((a, b) => a + b.length, 0);
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    await yieldNow();
    const t0 = performance.now();
    for (let i = 0; i < blocks.length; i++) fn(blocks[i]!, i);
    runs.push(rate(bytes, performance.now() - t0));
  }
  return median(runs);
}

/** One batch of blocks held in a pool slot, as backup.ts holds what it read. */
interface Batch {
  slot: Slot;
  length: number;
}

/** Runs `task(i)` for every i below `count`, at most `maxInflight` at once (the engine's pattern); returns ms. */
async function bounded(count: number, maxInflight: number, task: (i: number) => Promise<void>): Promise<number> {
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const t0 = performance.now();
  for (let i = 0; i < count && failure === undefined; i++) {
    while (inflight.size >= maxInflight) await Promise.race(inflight);
    const p: Promise<void> = task(i)
      .catch((err) => {
        failure ??= err;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw failure;
  return performance.now() - t0;
}

/** digestBlocks + sealBlocks through the pool on batches already in its slots, backup.ts's concurrency. */
async function pipelinePass(pool: ChunkPool, domainId: string, batches: Batch[]): Promise<{ ms: number; sealedBytes: number }> {
  let sealedBytes = 0;
  const ms = await bounded(batches.length, Math.max(2, pool.size * 2), async (i) => {
    const { slot, length } = batches[i]!;
    const d = await pool.digest(domainId, slot, length, BLOCK);
    const blocks = Array.from({ length: d.zero.length }, (_, j) => j); // the corpus has no zero blocks
    const s = await pool.seal(domainId, slot, length, BLOCK, blocks, d.ids);
    sealedBytes += s.lengths.reduce((a, b) => a + b, 0);
    pool.release(s.out); // in the engine: once the chunks are copied into their pack
  });
  return { ms, sealedBytes };
}

/** Copies blocks into batch buffers of `batchBlocks` blocks, as the engine reads them. */
function toBatches(blocks: Buffer[]): Buffer[] {
  const batchBlocks = DEFAULT_ENGINE_CONFIG.batchBlocks;
  const batches: Buffer[] = [];
  for (let i = 0; i < blocks.length; i += batchBlocks) {
    const part = blocks.slice(i, i + batchBlocks);
    const b = Buffer.alloc(part.length * BLOCK);
    part.forEach((blk, j) => blk.copy(b, j * BLOCK));
    batches.push(b);
  }
  return batches;
}

/** Each batch copied into a slot of the pool (held for the whole measurement). */
function loadBatches(pool: ChunkPool, batches: Buffer[]): Batch[] {
  return batches.map((b) => {
    const slot = pool.acquire(b.length);
    b.copy(slot.buf);
    return { slot, length: b.length };
  });
}

async function pipelineRate(workers: number, keys: DomainKeys, corpus: Buffer[]): Promise<{ mbps: number; runs: number[]; ratio: number; threads: ThreadCpu }> {
  const pool = trackPoolThreads(() => new ChunkPool({ workers }));
  try {
    pool.registerDomain('d-bench', keys);
    const batches = loadBatches(pool, toBatches(corpus));
    const bytes = corpus.length * BLOCK;
    await pipelinePass(pool, 'd-bench', batches); // warm-up: starts the workers and their JIT, creates the output slots
    const runs: number[] = [];
    let sealed = 0;
    const th0 = threadTicks();
    for (let r = 0; r < 3; r++) {
      const p = await pipelinePass(pool, 'd-bench', batches);
      runs.push(rate(bytes, p.ms));
      sealed = p.sealedBytes;
    }
    const th = threadCpuDelta(th0, threadTicks());
    return { mbps: median(runs), runs, ratio: sealed / bytes, threads: perPass(th, 3) };
  } finally {
    await pool.close();
  }
}

/** Sealed chunks laid out back to back in ranges of at most 16 MiB, as restore's ranged GETs return them. */
interface SealedRange {
  data: Buffer;
  chunks: Array<{ offset: number; length: number }>;
  ids: Buffer;
  plainBytes: number;
}

function toRanges(sealed: Buffer[], ids: Buffer[], plainLengths: number[]): SealedRange[] {
  const ranges: SealedRange[] = [];
  for (let i = 0; i < sealed.length; ) {
    const parts: number[] = [];
    let size = 0;
    while (i < sealed.length && (parts.length === 0 || size + sealed[i]!.length <= 16 * MiB)) {
      parts.push(i);
      size += sealed[i]!.length;
      i++;
    }
    let at = 0;
    ranges.push({
      data: Buffer.concat(parts.map((k) => sealed[k]!)),
      chunks: parts.map((k) => {
        const c = { offset: at, length: sealed[k]!.length };
        at += c.length;
        return c;
      }),
      ids: Buffer.concat(parts.map((k) => ids[k]!)),
      plainBytes: parts.reduce((a, k) => a + plainLengths[k]!, 0),
    });
  }
  return ranges;
}

/** The restore direction as restore.ts runs it: each ranged GET copied into a slot, opened in the pool. */
async function openPass(pool: ChunkPool, domainId: string, ranges: SealedRange[]): Promise<number> {
  return bounded(ranges.length, DEFAULT_ENGINE_CONFIG.restoreConcurrency, async (i) => {
    const r = ranges[i]!;
    const slot = pool.acquire(r.data.length);
    r.data.copy(slot.buf);
    let opened;
    try {
      opened = await pool.open(domainId, slot, r.data.length, r.chunks, r.ids, BLOCK);
    } finally {
      pool.release(slot);
    }
    if (!opened.ok) throw new Error(`chunk ${opened.index} did not open: ${opened.reason}`);
    pool.release(opened.out); // in the engine: once the blocks are written
  });
}

async function openRate(workers: number, keys: DomainKeys, ranges: SealedRange[]): Promise<{ mbps: number; threads: ThreadCpu }> {
  const pool = trackPoolThreads(() => new ChunkPool({ workers }));
  try {
    pool.registerDomain('d-bench', keys);
    const plain = ranges.reduce((a, r) => a + r.plainBytes, 0);
    await openPass(pool, 'd-bench', ranges); // warm-up
    const runs: number[] = [];
    const th0 = threadTicks();
    for (let r = 0; r < 3; r++) runs.push(rate(plain, await openPass(pool, 'd-bench', ranges)));
    return { mbps: median(runs), threads: perPass(threadCpuDelta(th0, threadTicks()), 3) };
  } finally {
    await pool.close();
  }
}

/** digestBlocks + sealBlocks on one thread over 8 MiB batches, sealing into one reused output buffer. */
async function singleThreadPipeline(keys: DomainKeys, corpus: Buffer[]): Promise<number> {
  const batches = toBatches(corpus);
  const out = Buffer.allocUnsafeSlow(sealCapacity(DEFAULT_ENGINE_CONFIG.batchBlocks * BLOCK, BLOCK, Array.from({ length: DEFAULT_ENGINE_CONFIG.batchBlocks }, (_, j) => j)));
  const pass = () => {
    for (const batch of batches) {
      const d = digestBlocks(keys, batch, BLOCK);
      sealBlocks(keys, batch, BLOCK, Array.from({ length: d.zero.length }, (_, j) => j), d.ids, out);
    }
  };
  pass(); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    await yieldNow();
    const t0 = performance.now();
    pass();
    runs.push(rate(corpus.length * BLOCK, performance.now() - t0));
  }
  return median(runs);
}

/**
 * The hot loop of an incremental backup (read 8 MiB batches, digest them in the pool; nearly every block
 * then matches the parent), as backup.ts runs it: each batch read into a recycled pool slot.
 */
async function readDigestLoop(pool: ChunkPool, domainId: string, path: string, size: number): Promise<number> {
  const batchBytes = DEFAULT_ENGINE_CONFIG.batchBlocks * BLOCK;
  const fh = await open(path, 'r');
  try {
    const ms = await bounded(Math.ceil(size / batchBytes), Math.max(2, pool.size * 2), async (i) => {
      const offset = i * batchBytes;
      const length = Math.min(batchBytes, size - offset);
      const slot = pool.acquire(length);
      try {
        const { bytesRead } = await fh.read(slot.buf, 0, length, offset);
        if (bytesRead !== length) throw new Error('short read');
        await pool.digest(domainId, slot, length, BLOCK);
      } finally {
        pool.release(slot);
      }
    });
    return rate(size, ms);
  } finally {
    await fh.close();
  }
}

async function readDigestRate(keys: DomainKeys, path: string, size: number): Promise<{ mbps: number; runs: number[] }> {
  const pool = trackPoolThreads(() => new ChunkPool());
  try {
    pool.registerDomain('d-bench', keys);
    await readDigestLoop(pool, 'd-bench', path, Math.min(size, 256 * MiB)); // warm-up
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) runs.push(await readDigestLoop(pool, 'd-bench', path, size));
    return { mbps: median(runs), runs };
  } finally {
    await pool.close();
  }
}

/** An object store that drops what it is given (PackWriter measured without I/O). */
class NullStore extends MemoryObjectStore {
  override async put() {}
}

/** PackWriter as backup.ts drives it: sealed chunks copied into ~16 MiB pack bodies, finishPack, (no) upload. */
async function packWriterRate(keys: DomainKeys, ids: Buffer[], sealed: Buffer[]): Promise<number> {
  const domain = { projectId: 'bench', domainId: 'd-bench', kmsKeyId: 'bench', keys };
  const index: ChunkIndex = { lookup: async () => new Map(), record: async () => {} };
  const bytes = sealed.reduce((a, b) => a + b.length, 0);
  const bodies = new ChunkPool({ workers: 0 }); // inline: only its slots are used, as pack bodies
  const pass = async () => {
    const w = new PackWriter(new NullStore(), index, domain, bodies, DEFAULT_ENGINE_CONFIG.packTargetBytes, BLOCK + SEAL_OVERHEAD, DEFAULT_ENGINE_CONFIG.uploadConcurrency);
    const t0 = performance.now();
    for (let i = 0; i < sealed.length; i++) {
      w.add(ids[i]!, sealed[i]!);
      if (i % DEFAULT_ENGINE_CONFIG.batchBlocks === DEFAULT_ENGINE_CONFIG.batchBlocks - 1) await w.backpressure(); // once per batch
    }
    await w.finish();
    return rate(bytes, performance.now() - t0);
  };
  await pass(); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) runs.push(await pass());
  return median(runs);
}

/** Up to `maxBytes` of the image's non-zero 512 KiB blocks, in image order. */
async function nonZeroBlocks(path: string, maxBytes: number): Promise<Buffer[]> {
  const fh = await open(path, 'r');
  const out: Buffer[] = [];
  try {
    for (let at = 0; out.length * BLOCK < maxBytes; at += BLOCK) {
      const b = Buffer.alloc(BLOCK);
      const { bytesRead } = await fh.read(b, 0, BLOCK, at);
      if (bytesRead < BLOCK) break;
      if (!isAllZero(b)) out.push(b);
    }
  } finally {
    await fh.close();
  }
  return out;
}

/**
 * Everything above on up to `corpusBytes` of the image's non-zero blocks; the hot loop reads the whole
 * image (`imageBytes`).
 */
export async function cpuBench(imagePath: string, imageBytes: number, corpusBytes: number) {
  const corpus = await nonZeroBlocks(imagePath, corpusBytes);
  const m0 = machineTicks();
  const cpu0 = process.cpuUsage();
  const keys = deriveDomainKeys(randomBytes(32), 'd-bench');
  // zstd as sealChunk and openChunk call it (chunk-codec.ts)
  const zstd1 = { params: { [zc.ZSTD_c_compressionLevel]: 1 }, chunkSize: BLOCK + 64 * 1024 };
  const unzstd = { chunkSize: BLOCK, maxOutputLength: BLOCK };
  const bytes = corpus.length * BLOCK;

  // The pool pipelines first, while the heap is small (the single-step numbers below allocate a lot).
  const pipeline = {
    workers1: await pipelineRate(1, keys, corpus),
    workersAll: await pipelineRate(CORES, keys, corpus),
  };

  const out = Buffer.allocUnsafeSlow(BLOCK + SEAL_OVERHEAD);
  const ids = corpus.map((b) => chunkId(keys, b));
  const sealedChunks = corpus.map((b, i) => {
    const len = sealChunk(keys, ids[i]!, b, out, 0);
    return Buffer.from(out.subarray(0, len));
  });
  const ranges = toRanges(sealedChunks, ids, corpus.map((b) => b.length));
  const openPipeline = await openRate(CORES, keys, ranges);

  // Composition: blocks zstd shrinks (text-like) vs blocks stored raw (random).
  const compressed = corpus.map((b) => zstdCompressSync(b, zstd1));
  const textIdx = corpus.map((_, i) => i).filter((i) => compressed[i]!.length < BLOCK);
  const text = textIdx.map((i) => corpus[i]!);
  const random = corpus.filter((_, i) => compressed[i]!.length >= BLOCK);
  const storedRatio = corpus.reduce((a, b, i) => a + Math.min(compressed[i]!.length, b.length), 0) / bytes;
  const textRatio = textIdx.reduce((a, i) => a + compressed[i]!.length, 0) / Math.max(1, text.length * BLOCK);

  const textCompressed = textIdx.map((i) => compressed[i]!);
  const zero = Buffer.alloc(BLOCK);
  const nonce = randomBytes(12);

  const single = {
    hmacSha256: await timeBlocks(corpus, (b) => void createHmac('sha256', keys.idKey).update(b).digest()),
    zstd1: await timeBlocks(corpus, (b) => void zstdCompressSync(b, zstd1)),
    zstd1Text: await timeBlocks(text, (b) => void zstdCompressSync(b, zstd1)),
    zstd1Random: await timeBlocks(random, (b) => void zstdCompressSync(b, zstd1)),
    aesGcmSealInto: await timeBlocks(corpus, (b, i) => {
      // what sealInto does: update() output and tag copied into the output slot
      const c = createCipheriv('aes-256-gcm', keys.encKey, nonce);
      c.setAAD(ids[i]!);
      out.set(c.update(b), 13);
      c.final();
      out.set(c.getAuthTag(), 13 + b.length);
    }),
    aesGcmNoCopy: await timeBlocks(corpus, (b) => {
      const c = createCipheriv('aes-256-gcm', keys.encKey, nonce);
      c.update(b);
      c.final();
      c.getAuthTag();
    }),
    sealChunk: await timeBlocks(corpus, (b, i) => void sealChunk(keys, ids[i]!, b, out, 0)),
    allZeroCheck: await timeBlocks(Array.from({ length: 256 }, () => zero), (b) => void isAllZero(b)),
    packWriter: await packWriterRate(keys, ids, sealedChunks),
    // restore side (MB/s of plaintext)
    zstdDecompress: await timeBlocks(text, (_b, i) => void zstdDecompressSync(textCompressed[i]!, unzstd)),
    aesGcmDecrypt: await timeBlocks(sealedChunks, (s) => {
      // decryption alone (the tag check in final() is part of openChunk below)
      const d = createDecipheriv('aes-256-gcm', keys.encKey, s.subarray(1, 13));
      d.update(s.subarray(13, s.length - 16));
    }),
    openChunk: await timeBlocks(corpus, (_b, i) => void openChunk(keys, ids[i]!, sealedChunks[i]!, BLOCK)),
  };

  const oneThread = await singleThreadPipeline(keys, corpus);
  const readDigest = await readDigestRate(keys, imagePath, imageBytes);
  const m1 = machineTicks();
  const cpu1 = process.cpuUsage(cpu0);
  const othersShare = Math.max(0, (m1.busy - m0.busy) / 100 - (cpu1.user + cpu1.system) / 1e6) / ((m1.total - m0.total) / 100);
  return {
    readDigest,
    othersShare,
    corpusBlocks: corpus.length,
    corpusBytes: bytes,
    textBlocks: text.length,
    randomBlocks: random.length,
    storedRatio,
    textRatio,
    single,
    openPipeline,
    pipeline: { ...pipeline, oneThread },
    predictedSingleThread: 1 / (1 / single.hmacSha256 + 1 / single.zstd1 + 1 / single.aesGcmSealInto),
  };
}

export type CpuResults = Awaited<ReturnType<typeof cpuBench>>;

/**
 * The pool pipeline once more, on the corpus read afresh: run after the backends, so a slowdown from a
 * bigger heap or a loaded SDK shows, without holding the corpus in memory while the backends are measured.
 */
export async function pipelineAgain(imagePath: string, corpusBytes: number) {
  return pipelineRate(CORES, deriveDomainKeys(randomBytes(32), 'd-bench'), await nonZeroBlocks(imagePath, corpusBytes));
}

// Block access to EBS snapshots through the EBS direct APIs: a BlockReader over a completed snapshot
// (ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock) and a BlockWriter into a new one (PutSnapshotBlock).
// EBS blocks are 512 KiB, whatever a response's BlockSize says (moto answers 512).
import { createHash } from 'node:crypto';
import { GetSnapshotBlockCommand, ListChangedBlocksCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand } from '@aws-sdk/client-ebs';
import type { EBSClient } from '@aws-sdk/client-ebs';
import type { BlockReader, BlockWriter, ByteRange } from '../engine/ports.ts';
import { backoffMs, createLimiter, sleep } from '../util/concurrency.ts';
import { isTransient, TransientError } from '../workflows/errors.ts';
import { copyBytes, zeroFill } from '../util/aligned-memory.ts';

/** The EBS block size: fixed by the service. */
export const EBS_BLOCK = 512 * 1024;

/** Blocks listed per ListSnapshotBlocks / ListChangedBlocks window (2 GiB of volume); a window is listed once. */
const WINDOW_BLOCKS = 4096;
/** Windows a reader keeps (a segment task reads one segment: at most 32 GiB, 16 windows). */
const MAX_WINDOWS = 32;
/** A block token is used until this long before its listed expiry, then the window is listed again. */
const TOKEN_MARGIN_MS = 5 * 60_000;
/** Attempts per block beyond the SDK's own retries (checksum mismatches, transient faults the SDK let out). */
const BLOCK_ATTEMPTS = 4;

/** A block's data did not match the checksum EBS sent with it (after every retry). */
export class EbsChecksumError extends Error {
  override name = 'EbsChecksumError';
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('base64');

/** Runs `fn` again, with backoff, while it fails transiently or with a checksum mismatch. */
async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= BLOCK_ATTEMPTS || !(err instanceof EbsChecksumError || isTransient(err))) throw err;
      await sleep(backoffMs(attempt, 100, 5_000));
    }
  }
}

function clipRanges(blocks: Iterable<number>, offset: number, length: number, sizeBytes: number): ByteRange[] {
  const end = Math.min(offset + length, sizeBytes);
  const out: ByteRange[] = [];
  for (const b of blocks) {
    const from = Math.max(offset, b * EBS_BLOCK);
    const to = Math.min(end, (b + 1) * EBS_BLOCK);
    if (to <= from) continue;
    const last = out.at(-1);
    if (last && last.offset + last.length === from) last.length += to - from;
    else out.push({ offset: from, length: to - from });
  }
  return out;
}

interface Window {
  /** Block index -> token (written blocks), or the changed block indexes (value unused). */
  blocks: Map<number, string>;
  expiresAt: number;
}

/** Windows of a listing, listed on demand and kept (a few) until their tokens near expiry. */
class WindowCache {
  private readonly windows = new Map<number, Promise<Window>>();
  private readonly list: (first: number, end: number) => Promise<Window>;

  constructor(list: (first: number, end: number) => Promise<Window>) {
    this.list = list;
  }

  async get(w: number): Promise<Window> {
    let p = this.windows.get(w);
    if (p) {
      const got = await p.catch(() => undefined);
      if (got && got.expiresAt - TOKEN_MARGIN_MS > Date.now()) return got;
      this.windows.delete(w);
    }
    p = this.list(w * WINDOW_BLOCKS, (w + 1) * WINDOW_BLOCKS);
    this.windows.set(w, p);
    if (this.windows.size > MAX_WINDOWS) this.windows.delete(this.windows.keys().next().value!);
    return p;
  }

  /** The blocks of [firstBlock, endBlock), ascending. */
  async blocks(firstBlock: number, endBlock: number): Promise<Array<[number, string]>> {
    const out: Array<[number, string]> = [];
    for (let w = Math.floor(firstBlock / WINDOW_BLOCKS); w * WINDOW_BLOCKS < endBlock; w++) {
      const win = await this.get(w);
      for (const [b, token] of win.blocks) if (b >= firstBlock && b < endBlock) out.push([b, token]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  invalidate(w: number): void {
    this.windows.delete(w);
  }
}

const expiry = (t: Date | undefined) => t?.getTime() ?? Date.now() + 60 * 60_000;

export interface SnapshotReaderOptions {
  /** GetSnapshotBlock calls in flight per reader. */
  concurrency: number;
  /** The earlier snapshot of the same disk to report changes against; undefined: changedRanges says it cannot tell. */
  sinceSnapshotId?: string;
  onClose?: () => Promise<void>;
}

/** Reads a completed EBS snapshot. Unwritten blocks read as zeros and are never fetched. */
export class EbsSnapshotReader implements BlockReader {
  readonly sizeBytes: number;
  readonly snapshotId: string;
  private readonly ebs: EBSClient;
  private readonly options: SnapshotReaderOptions;
  private readonly limit: ReturnType<typeof createLimiter>;
  private readonly written: WindowCache;
  private readonly changed: WindowCache | undefined;
  /** Set once ListChangedBlocks refused the pair (different lineage, a released parent): cannot tell. */
  private changesUnknown = false;

  constructor(ebs: EBSClient, snapshotId: string, sizeBytes: number, options: SnapshotReaderOptions) {
    this.ebs = ebs;
    this.snapshotId = snapshotId;
    this.sizeBytes = sizeBytes;
    this.options = options;
    this.limit = createLimiter(Math.max(1, options.concurrency));
    this.written = new WindowCache((first, end) => this.listWritten(first, end));
    const since = options.sinceSnapshotId;
    this.changed = since ? new WindowCache((first, end) => this.listChanged(since, first, end)) : undefined;
  }

  private async listWritten(first: number, end: number): Promise<Window> {
    const blocks = new Map<number, string>();
    let expiresAt = Infinity;
    let nextToken: string | undefined;
    do {
      const page = await this.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: this.snapshotId, StartingBlockIndex: first, MaxResults: 10_000, NextToken: nextToken }));
      expiresAt = Math.min(expiresAt, expiry(page.ExpiryTime));
      let past = false;
      for (const b of page.Blocks ?? []) {
        if (b.BlockIndex === undefined || !b.BlockToken) continue;
        if (b.BlockIndex >= end) past = true;
        else if (b.BlockIndex >= first) blocks.set(b.BlockIndex, b.BlockToken); // (an emulator may ignore StartingBlockIndex)
      }
      nextToken = past ? undefined : page.NextToken;
    } while (nextToken);
    return { blocks, expiresAt };
  }

  private async listChanged(since: string, first: number, end: number): Promise<Window> {
    const blocks = new Map<number, string>();
    let nextToken: string | undefined;
    let expiresAt = Infinity;
    do {
      const page = await this.ebs.send(
        new ListChangedBlocksCommand({ FirstSnapshotId: since, SecondSnapshotId: this.snapshotId, StartingBlockIndex: first, MaxResults: 10_000, NextToken: nextToken }),
      );
      expiresAt = Math.min(expiresAt, expiry(page.ExpiryTime));
      let past = false;
      for (const b of page.ChangedBlocks ?? []) {
        if (b.BlockIndex === undefined) continue;
        if (b.BlockIndex >= end) past = true;
        else if (b.BlockIndex >= first) blocks.set(b.BlockIndex, b.SecondBlockToken ?? '');
      }
      nextToken = past ? undefined : page.NextToken;
    } while (nextToken);
    return { blocks, expiresAt };
  }

  async writtenRanges(offset: number, length: number): Promise<ByteRange[]> {
    const end = Math.min(offset + length, this.sizeBytes);
    if (end <= offset) return [];
    const listed = await this.written.blocks(Math.floor(offset / EBS_BLOCK), Math.ceil(end / EBS_BLOCK));
    return clipRanges(
      listed.map(([b]) => b),
      offset,
      length,
      this.sizeBytes,
    );
  }

  async changedRanges(offset: number, length: number): Promise<ByteRange[] | undefined> {
    if (!this.changed || this.changesUnknown) return undefined;
    const end = Math.min(offset + length, this.sizeBytes);
    if (end <= offset) return [];
    try {
      const listed = await this.changed.blocks(Math.floor(offset / EBS_BLOCK), Math.ceil(end / EBS_BLOCK));
      return clipRanges(
        listed.map(([b]) => b),
        offset,
        length,
        this.sizeBytes,
      );
    } catch (err) {
      if (isTransient(err)) throw err;
      // Not of one lineage, or the earlier snapshot is gone: the engine then compares every written block.
      this.changesUnknown = true;
      return undefined;
    }
  }

  async read(into: Buffer, offset: number): Promise<number> {
    const n = Math.max(0, Math.min(into.length, this.sizeBytes - offset));
    if (n === 0) return 0;
    const first = Math.floor(offset / EBS_BLOCK);
    const end = Math.ceil((offset + n) / EBS_BLOCK);
    const tokens = new Map(await this.written.blocks(first, end));
    const tasks: Array<Promise<void>> = [];
    for (let b = first; b < end; b++) {
      const from = Math.max(offset, b * EBS_BLOCK);
      const to = Math.min(offset + n, (b + 1) * EBS_BLOCK);
      const target = into.subarray(from - offset, to - offset);
      const token = tokens.get(b);
      if (token === undefined) {
        zeroFill(target);
        continue;
      }
      tasks.push(
        this.limit(async () => {
          const data = await this.getBlock(b, token);
          const at = from - b * EBS_BLOCK;
          const got = data.subarray(at, at + target.length);
          copyBytes(got, target, 0); // into a slot: see aligned-memory.ts
          if (got.length < target.length) zeroFill(target, got.length); // a short block reads as zeros after its data
        }),
      );
    }
    const settled = await Promise.allSettled(tasks);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return n;
  }

  private async getBlock(index: number, token: string): Promise<Buffer> {
    let current = token;
    let relisted = false;
    return withRetries(async () => {
      try {
        const res = await this.ebs.send(new GetSnapshotBlockCommand({ SnapshotId: this.snapshotId, BlockIndex: index, BlockToken: current }));
        const data = Buffer.from((await res.BlockData?.transformToByteArray()) ?? new Uint8Array(0));
        if (res.DataLength !== undefined && res.DataLength !== data.length) throw new EbsChecksumError(`block ${index} of ${this.snapshotId}: ${data.length} bytes, ${res.DataLength} announced`);
        if (res.Checksum && (res.ChecksumAlgorithm ?? 'SHA256') === 'SHA256' && sha256(data) !== res.Checksum) {
          throw new EbsChecksumError(`block ${index} of ${this.snapshotId} does not match its SHA256 checksum`);
        }
        return data;
      } catch (err) {
        // A token that expired (a long read): list its window again, once, and retry with the new token.
        if (!relisted && (err as Error).name === 'ValidationException' && /token/i.test((err as Error).message)) {
          relisted = true;
          const w = Math.floor(index / WINDOW_BLOCKS);
          this.written.invalidate(w);
          const fresh = (await this.written.get(w)).blocks.get(index);
          if (fresh) {
            current = fresh;
            throw new TransientError(`block ${index} of ${this.snapshotId}: token renewed`);
          }
        }
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.options.onClose?.();
  }
}

export interface SnapshotWriterOptions<R> {
  /** PutSnapshotBlock calls in flight. */
  concurrency: number;
  /** Called once by the first flush, after every block is stored: completes the snapshot (and makes the volume). */
  complete: (changedBlocks: number) => Promise<R>;
  /** Called by close when no flush completed the snapshot. */
  abandon: () => Promise<void>;
}

/**
 * Writes a new EBS snapshot (started without a parent: it reads as zeros where nothing was written). Whole
 * blocks go out as they arrive; a block written in pieces waits in memory until it is whole or the flush.
 */
export class EbsSnapshotWriter<R = void> implements BlockWriter {
  readonly sizeBytes: number;
  readonly zeroed = true;
  readonly snapshotId: string;
  private readonly ebs: EBSClient;
  /** What the completion made, once a flush completed the snapshot. */
  result: R | undefined;
  private readonly options: SnapshotWriterOptions<R>;
  private readonly limit: ReturnType<typeof createLimiter>;
  /** Blocks written in pieces: data so far and the byte ranges covered. */
  private readonly partial = new Map<number, { data: Buffer; covered: ByteRange[] }>();
  private readonly stored = new Set<number>();
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown;
  private completed = false;

  constructor(ebs: EBSClient, snapshotId: string, sizeBytes: number, options: SnapshotWriterOptions<R>) {
    this.ebs = ebs;
    this.snapshotId = snapshotId;
    this.sizeBytes = sizeBytes;
    this.options = options;
    this.limit = createLimiter(Math.max(1, options.concurrency));
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    if (this.completed) throw new Error(`snapshot ${this.snapshotId} is already completed`);
    if (offset < 0 || offset + data.length > this.sizeBytes) throw new RangeError(`write of ${data.length} bytes at ${offset} is outside the ${this.sizeBytes}-byte volume`);
    const puts: Array<Promise<void>> = [];
    for (let pos = offset; pos < offset + data.length; ) {
      const b = Math.floor(pos / EBS_BLOCK);
      const to = Math.min(offset + data.length, (b + 1) * EBS_BLOCK);
      const piece = data.subarray(pos - offset, to - offset);
      const at = pos - b * EBS_BLOCK;
      if (at === 0 && piece.length === EBS_BLOCK && !this.partial.has(b)) {
        puts.push(this.put(b, Buffer.from(piece)));
      } else {
        const p = this.partial.get(b) ?? { data: Buffer.alloc(EBS_BLOCK), covered: [] };
        this.partial.set(b, p);
        p.data.set(piece, at);
        p.covered = mergeCovered([...p.covered, { offset: at, length: piece.length }]);
        if (p.covered.length === 1 && p.covered[0]!.offset === 0 && p.covered[0]!.length === EBS_BLOCK) {
          this.partial.delete(b);
          puts.push(this.put(b, p.data));
        }
      }
      pos = to;
    }
    const settled = await Promise.allSettled(puts);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Stores block `b`; a zero block that was never stored needs no put (the snapshot reads zeros there). */
  private put(b: number, data: Buffer): Promise<void> {
    if (!this.stored.has(b) && isZero(data)) return Promise.resolve();
    this.stored.add(b);
    const task = this.limit(() =>
      withRetries(async () => {
        await this.ebs.send(
          new PutSnapshotBlockCommand({ SnapshotId: this.snapshotId, BlockIndex: b, BlockData: data, DataLength: data.length, Checksum: sha256(data), ChecksumAlgorithm: 'SHA256' }),
        );
      }),
    );
    const tracked = task.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
    return task;
  }

  /** Reads back what this writer holds: zeros where nothing was written, the data of blocks still in pieces. */
  async read(into: Buffer, offset: number): Promise<number> {
    const n = Math.max(0, Math.min(into.length, this.sizeBytes - offset));
    for (let pos = offset; pos < offset + n; ) {
      const b = Math.floor(pos / EBS_BLOCK);
      const to = Math.min(offset + n, (b + 1) * EBS_BLOCK);
      if (this.stored.has(b)) throw new Error(`block ${b} of snapshot ${this.snapshotId} is stored and cannot be read before the snapshot completes`);
      const p = this.partial.get(b);
      if (p) p.data.copy(into, pos - offset, pos - b * EBS_BLOCK, to - b * EBS_BLOCK);
      else zeroFill(into, pos - offset, to - offset);
      pos = to;
    }
    return n;
  }

  /** Blocks this writer stored (PutSnapshotBlock), zero blocks that needed no put left out. */
  get blocksStored(): number {
    return this.stored.size;
  }

  async flush(): Promise<void> {
    if (this.completed) return;
    const rest = [...this.partial];
    this.partial.clear();
    await Promise.allSettled(rest.map(([b, p]) => this.put(b, p.data)));
    await Promise.all([...this.inflight]);
    if (this.failure !== undefined) throw this.failure;
    this.result = await this.options.complete(this.stored.size);
    this.completed = true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.inflight]);
    if (!this.completed) await this.options.abandon();
  }
}

function mergeCovered(ranges: ByteRange[]): ByteRange[] {
  const sorted = ranges.sort((a, b) => a.offset - b.offset);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.offset <= last.offset + last.length) last.length = Math.max(last.length, r.offset + r.length - last.offset);
    else out.push({ ...r });
  }
  return out;
}

const ZERO_BLOCK = Buffer.alloc(EBS_BLOCK);

function isZero(data: Buffer): boolean {
  return data.equals(ZERO_BLOCK);
}

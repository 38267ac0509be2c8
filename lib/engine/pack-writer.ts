// Collects sealed chunks into packs of at most the target size (a chunk that would pass it starts the next
// pack), uploads them with bounded concurrency and records each chunk in the index only after its pack is
// stored, so the index never points at a missing pack. Chunks are copied into the pack body as they arrive,
// so the caller's buffers are free at once. Pack bodies are slots of the chunk pool of the target plus the
// header's room, given back as soon as the pack is stored (the index write after it needs only the
// entries): the segments of a backup (and the backups of a process) reuse the same few bodies instead of
// each writer leaving its own for the garbage collector while the next allocates new ones.
import { finishPack, newPackKey } from './pack.ts';
import type { PackEntry } from './pack.ts';
import type { KeyDomain } from './key-domains.ts';
import type { ChunkIndex, ObjectStore } from './ports.ts';
import type { ChunkPool, Slot } from './chunk-pool.ts';
import { createLimiter } from '../util/concurrency.ts';
import { copyBytes } from '../util/aligned-memory.ts';

/** Room for the sealed header of a typical pack, so it is written in place. */
const HEADER_RESERVE = 256 * 1024;

export class PackWriter {
  packsWritten = 0;
  packBytes = 0;
  private body: Slot | undefined;
  private used = 0;
  private entries: PackEntry[] = [];
  private readonly bodies: Pick<ChunkPool, 'acquire' | 'release'>;
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;
  private readonly limit: ReturnType<typeof createLimiter>;
  private readonly store: ObjectStore;
  private readonly index: ChunkIndex;
  private readonly domain: KeyDomain;
  private readonly targetBytes: number;
  private readonly capacity: number;
  private readonly uploadConcurrency: number;

  constructor(store: ObjectStore, index: ChunkIndex, domain: KeyDomain, bodies: Pick<ChunkPool, 'acquire' | 'release'>, targetBytes: number, maxChunkBytes: number, uploadConcurrency: number) {
    this.store = store;
    this.bodies = bodies;
    this.index = index;
    this.domain = domain;
    this.targetBytes = targetBytes;
    this.capacity = Math.max(targetBytes, maxChunkBytes) + HEADER_RESERVE;
    this.uploadConcurrency = uploadConcurrency;
    this.limit = createLimiter(uploadConcurrency);
  }

  /** Copies one sealed chunk into the current pack; a chunk that would take it past the target starts the next. */
  add(id: Uint8Array, sealed: Uint8Array): void {
    this.throwIfFailed();
    if (this.used > 0 && this.used + sealed.length > this.targetBytes) this.seal();
    this.body ??= this.bodies.acquire(this.capacity);
    copyBytes(sealed, this.body.buf, this.used); // slot to slot: see aligned-memory.ts
    this.entries.push({ id: Buffer.from(id), offset: this.used, length: sealed.length });
    this.used += sealed.length;
    if (this.used >= this.targetBytes) this.seal();
  }

  /** Waits while too many packs are queued, so memory stays bounded when S3 is slower than the CPU. */
  async backpressure(): Promise<void> {
    while (this.uploads.size > this.uploadConcurrency * 2) await Promise.race(this.uploads);
    this.throwIfFailed();
  }

  /** Uploads what is left and waits for every pack and index write. */
  async finish(): Promise<void> {
    if (this.entries.length) this.seal();
    while (this.uploads.size) await Promise.race(this.uploads);
    this.throwIfFailed();
  }

  /**
   * Gives back the body being filled, if any: what a segment that failed before `finish` still holds.
   * Uploads in flight give theirs back as they settle.
   */
  releaseUnsealed(): void {
    if (this.body) this.bodies.release(this.body);
    this.body = undefined;
    this.used = 0;
    this.entries = [];
  }

  private throwIfFailed() {
    if (this.failure) throw this.failure;
  }

  private seal(): void {
    const data = this.body!;
    const dataBytes = this.used;
    const entries = this.entries;
    this.body = undefined;
    this.used = 0;
    this.entries = [];
    // The limiter runs every task it is given, so the body always goes back here, as soon as it is stored.
    const upload = this.limit(async () => {
      const key = newPackKey(this.domain.domainId);
      let length: number;
      try {
        const body = finishPack(this.domain.keys, key, data.buf, dataBytes, entries);
        length = body.length;
        await this.store.put(key, body);
      } finally {
        this.bodies.release(data);
      }
      await this.index.record(
        this.domain.domainId,
        entries.map((e) => ({ id: e.id.toString('hex'), location: { pack: key, offset: e.offset, length: e.length } })),
      );
      this.packsWritten++;
      this.packBytes += length;
    })
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.uploads.delete(upload);
      });
    this.uploads.add(upload);
  }
}

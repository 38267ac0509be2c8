// Collects sealed chunks into packs of ~target size, uploads them with bounded concurrency and records
// each chunk in the index only after its pack is stored, so the index never points at a missing pack.
import { buildPack, newPackKey } from './pack.ts';
import type { KeyDomain } from './key-domains.ts';
import type { ChunkIndex, ObjectStore } from './ports.ts';
import { createLimiter } from '../util/concurrency.ts';

export class PackWriter {
  packsWritten = 0;
  packBytes = 0;
  private chunks: Array<{ id: Buffer; sealed: Buffer }> = [];
  private bytes = 0;
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;
  private readonly limit: ReturnType<typeof createLimiter>;
  private readonly store: ObjectStore;
  private readonly index: ChunkIndex;
  private readonly domain: KeyDomain;
  private readonly targetBytes: number;
  private readonly uploadConcurrency: number;

  constructor(store: ObjectStore, index: ChunkIndex, domain: KeyDomain, targetBytes: number, uploadConcurrency: number) {
    this.store = store;
    this.index = index;
    this.domain = domain;
    this.targetBytes = targetBytes;
    this.uploadConcurrency = uploadConcurrency;
    this.limit = createLimiter(uploadConcurrency);
  }

  add(id: Buffer, sealed: Buffer): void {
    this.throwIfFailed();
    this.chunks.push({ id, sealed });
    this.bytes += sealed.length;
    if (this.bytes >= this.targetBytes) this.seal();
  }

  /** Waits while too many packs are queued, so memory stays bounded when S3 is slower than the CPU. */
  async backpressure(): Promise<void> {
    while (this.uploads.size > this.uploadConcurrency * 2) await Promise.race(this.uploads);
    this.throwIfFailed();
  }

  /** Uploads what is left and waits for every pack and index write. */
  async finish(): Promise<void> {
    if (this.chunks.length) this.seal();
    while (this.uploads.size) await Promise.race(this.uploads);
    this.throwIfFailed();
  }

  private throwIfFailed() {
    if (this.failure) throw this.failure;
  }

  private seal(): void {
    const chunks = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    const upload = this.limit(async () => {
      const key = newPackKey(this.domain.domainId);
      const { body, entries } = buildPack(this.domain.keys, key, chunks);
      await this.store.put(key, body);
      await this.index.record(
        this.domain.domainId,
        entries.map((e) => ({ id: e.id.toString('hex'), location: { pack: key, offset: e.offset, length: e.length } })),
      );
      this.packsWritten++;
      this.packBytes += body.length;
    })
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => this.uploads.delete(upload));
    this.uploads.add(upload);
  }
}

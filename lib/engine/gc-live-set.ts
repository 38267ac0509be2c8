// The live set of one GC pass: the chunk ids the roots' manifests name, kept as their first 8 bytes in one
// sorted typed array (8 bytes per distinct id, whatever the number of manifests naming it).
//
// Membership is by prefix: an index entry whose id shares its first 64 bits with a live id counts as live.
// That errs only one way — a dead entry may be kept for a run (about entries x live / 2^64 of them: none in
// practice) — and never lets a live chunk go.
//
// Ids are appended to a buffer that is sorted and deduplicated when full, and grows (doubling) up to `maxIds`.
// When the distinct ids of the pass do not fit, add() throws LiveSetFull and the caller splits the pass.

export class LiveSetFull extends Error {
  override name = 'LiveSetFull';
}

export class LiveSet {
  private ids: BigUint64Array;
  private count = 0;
  private sorted = true;
  private readonly maxIds: number;

  constructor(maxIds: number, initialIds = 1 << 16) {
    this.maxIds = Math.max(1, maxIds);
    this.ids = new BigUint64Array(Math.min(this.maxIds, initialIds));
  }

  /** Distinct ids so far (after compaction). */
  get size(): number {
    this.compact();
    return this.count;
  }

  /** Bytes the set holds now. */
  get bytes(): number {
    return this.ids.byteLength;
  }

  /** Adds the id whose 32 bytes start at `at` in `buf`. */
  add(buf: Buffer, at: number): void {
    if (this.count === this.ids.length) this.makeRoom();
    this.ids[this.count++] = buf.readBigUInt64BE(at);
    this.sorted = false;
  }

  /** Whether the id (64 hex digits) is live. */
  hasHex(hexId: string): boolean {
    this.compact();
    const key = BigInt(`0x${hexId.slice(0, 16)}`);
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.ids[mid]!;
      if (v === key) return true;
      if (v < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  private makeRoom(): void {
    this.compact();
    // Grow while more than half is distinct ids, so compactions stay rare.
    if (this.count * 2 > this.ids.length && this.ids.length < this.maxIds) {
      const grown = new BigUint64Array(Math.min(this.maxIds, this.ids.length * 2));
      grown.set(this.ids.subarray(0, this.count));
      this.ids = grown;
    }
    if (this.count === this.ids.length) throw new LiveSetFull(`more than ${this.maxIds} distinct live chunk ids in one pass`);
  }

  private compact(): void {
    if (this.sorted) return;
    const view = this.ids.subarray(0, this.count);
    view.sort();
    let n = 0;
    for (let i = 0; i < view.length; i++) if (i === 0 || view[i] !== view[n - 1]) view[n++] = view[i]!;
    this.count = n;
    this.sorted = true;
  }
}

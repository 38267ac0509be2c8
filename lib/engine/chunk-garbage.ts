// Collecting what chunk work leaves behind, on a schedule of bytes rather than V8's own.
//
// Every chunk sealed leaves short-lived buffers (zlib and cipher outputs: Node's public APIs cannot write
// into a given buffer) and its zstd context, about 0.5 MB of native memory that V8 is not told of and frees
// only when it collects the zlib handle (measured: 1,000 compressions of 64 KiB with no collection in
// between left 80 MB resident). Every chunk opened leaves its decrypted payload (it decompresses into the
// output slot, zstd-into.ts). V8 collects them only once tens of MiB have piled up in the thread, and the
// thread's malloc arena then keeps that high-water mark resident. A young-generation collection after every
// GC_EVERY_BYTES bounds it to about that much: measured, 20-30 MB less peak RSS for a restore than every
// 8 MiB, and ~80 MB less for the race's ext4 incremental (852 changed 64 KiB sub-chunks) than one collection
// per sealed batch, with no more CPU. The cost of collecting is in giving memory back (raiseMallocThresholds
// in chunk-pool.ts). Module state: each thread that imports this counts its own.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const GC_EVERY_BYTES = 4 * 1024 * 1024;
/** A zstd compression context, as one sealed chunk leaves it (a bound from the measurement above). */
const ZSTD_CONTEXT_BYTES = 512 * 1024;

let collectYoung: ((options: { type: 'minor' }) => void) | undefined;
let sinceCollection = 0;

/** Counts `bytes` of short-lived memory left behind, collecting once GC_EVERY_BYTES have piled up; true when it collected. */
export function leftGarbage(bytes: number): boolean {
  sinceCollection += bytes;
  if (sinceCollection < GC_EVERY_BYTES) return false;
  sinceCollection = 0;
  if (!collectYoung) {
    // The flag exposes gc() to contexts made after it; this thread's own context is left as it was.
    setFlagsFromString('--expose-gc');
    collectYoung = runInNewContext('gc') as (options: { type: 'minor' }) => void;
  }
  collectYoung({ type: 'minor' });
  return true;
}

/** What sealing one chunk of `plainBytes` leaves: its zstd output and ciphertext, and its zstd context. */
export function sealedChunkGarbage(plainBytes: number): boolean {
  return leftGarbage(2 * plainBytes + ZSTD_CONTEXT_BYTES);
}

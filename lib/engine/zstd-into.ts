// zstd decompression straight into a buffer the caller owns.
//
// Node's public zstd API returns a new buffer per call: for a 4 MiB chunk that is 4 MiB of fresh memory to
// fault in, fill and copy out again, and garbage for V8 to collect. Measured on the disk-like image's
// compressible extents (one core): 1.3-1.7 GB/s through zstdDecompressSync, 3.8 GB/s into a reused buffer.
// The native handle behind zlib's streams can write into any buffer (zlib's own synchronous path does
// exactly this, into its own chunk); this module drives it, one decompression context per thread, reset
// between frames. Node's zlib internals are not a public contract, so the shape is checked once and, should
// it ever differ, the public API plus a copy is used instead: slower, never wrong. Either way a restore
// still checks every chunk's length and id, so a wrong decompression cannot pass unnoticed.
import { constants, createZstdDecompress, zstdDecompressSync } from 'node:zlib';

/** The part of zlib's native zstd handle used here (node/src/node_zlib.cc). */
interface NativeZstdHandle {
  reset(): void;
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number) => void;
}

interface NativeDecompressor {
  handle: NativeZstdHandle;
  /** [output bytes left, input bytes left] after each writeSync. */
  state: Uint32Array;
}

/** Thrown when the frame is damaged or holds more than the room given. */
export class ZstdIntoError extends Error {
  override name = 'ZstdIntoError';
}

function openNative(): NativeDecompressor | undefined {
  const stream = createZstdDecompress() as unknown as { _handle?: Partial<NativeZstdHandle>; _writeState?: unknown };
  const handle = stream._handle;
  const state = stream._writeState;
  if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array) || state.length !== 2) return undefined;
  return { handle: handle as NativeZstdHandle, state };
}

let native: NativeDecompressor | undefined | null = null;
/** One byte of room past the end: tells a frame that fits exactly from one that holds more. */
const probe = Buffer.alloc(1);

/** Whether decompression goes straight into the caller's buffer here (false: public API and a copy). */
export function decompressesInPlace(): boolean {
  if (native === null) native = openNative();
  return native !== undefined;
}

/**
 * Decompresses the zstd frame `input` into `out` from its start; returns the bytes written. Throws
 * ZstdIntoError if the frame is damaged or would need more than `out.length` bytes.
 */
export function zstdDecompressInto(input: Uint8Array, out: Buffer): number {
  if (!decompressesInPlace()) {
    let plain: Buffer;
    try {
      plain = zstdDecompressSync(input, { maxOutputLength: Math.max(1, out.length) });
    } catch (err) {
      throw new ZstdIntoError((err as Error).message);
    }
    out.set(plain, 0);
    return plain.length;
  }
  const { handle, state } = native!;
  let failure: string | undefined;
  handle.onerror = (message) => {
    failure = message;
  };
  handle.reset();
  handle.writeSync(constants.ZSTD_e_end, input, 0, input.length, out, 0, out.length);
  const written = out.length - state[0]!;
  if (failure === undefined && written === out.length) {
    // Full to the last byte: more may be pending in the context, from input left over or buffered.
    handle.writeSync(constants.ZSTD_e_end, input, input.length - state[1]!, state[1]!, probe, 0, 1);
    if (failure === undefined && state[0] === 0) failure = `frame holds more than ${out.length} bytes`;
  } else if (failure === undefined && state[1] !== 0) {
    failure = 'data after the frame';
  }
  if (failure !== undefined) {
    // A context that reported an error stays failed across reset: the next call gets a fresh one.
    native = openNative();
    throw new ZstdIntoError(failure);
  }
  return written;
}

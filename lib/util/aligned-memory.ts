// Page-aligned shared memory, for writes that bypass the page cache (O_DIRECT needs the memory, the file
// offset and the length on the device's block boundaries). JavaScript cannot ask where a buffer lives, and
// Node's allocator gives 16-byte alignment; a WebAssembly memory, though, starts on a page boundary (V8 maps
// it on its own), and a shared one is a SharedArrayBuffer like any other. Buffers made here are remembered,
// so a view's alignment can be told from its offset.
//
// Copying to or from this memory: copyBytes (and zeroFill for zeros). V8 copies a typed array whose memory is shared with relaxed atomic
// loads and stores, a word at a time where source and target sit at the same offset from a word boundary,
// a byte at a time where they do not (TypedArray.set, and Buffer.copy, which calls it): measured here, 32 GB/s
// against 4 GB/s. Sealed chunks land at arbitrary offsets of the pool's slots, and a backup copies each
// twice (ciphertext into its slot, then into a pack body), so this decides about a tenth of its CPU.

/** What a direct write needs of its memory, file offset and length here: 4 KiB, every device's block or less. */
export const DIRECT_IO_ALIGNMENT = 4096;
const WASM_PAGE_BYTES = 64 * 1024;

const pageAligned = new WeakSet<ArrayBufferLike>();

/** The one WebAssembly constructor used (the project's type library leaves WebAssembly out). */
interface WasmMemoryConstructor {
  new (descriptor: { initial: number; maximum: number; shared: boolean }): { buffer: ArrayBufferLike };
}
const WasmMemory = (globalThis as unknown as { WebAssembly?: { Memory?: WasmMemoryConstructor } }).WebAssembly?.Memory;

/**
 * A zero-filled SharedArrayBuffer of at least `bytes` (rounded up to 64 KiB) that starts on a page boundary,
 * or, should the runtime refuse a WebAssembly memory (address space used up), an ordinary one.
 */
export function allocatePageAlignedShared(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE_BYTES));
  try {
    if (!WasmMemory) throw new Error('no WebAssembly here');
    const memory = new WasmMemory({ initial: pages, maximum: pages, shared: true });
    const buffer = memory.buffer as SharedArrayBuffer;
    pageAligned.add(buffer);
    return buffer;
  } catch {
    return new SharedArrayBuffer(pages * WASM_PAGE_BYTES);
  }
}

/** True when `view` starts `boundary`-aligned in memory: it lies in page-aligned memory at a multiple of `boundary`. */
export function isMemoryAligned(view: ArrayBufferView, boundary = DIRECT_IO_ALIGNMENT): boolean {
  return pageAligned.has(view.buffer) && view.byteOffset % boundary === 0;
}

/** Bytes copied through the scratch buffers at a time: small enough to stay in the core's cache. */
const COPY_STEP = 64 * 1024;
const WORD = 8;
// Ordinary memory (their allocations start on a word boundary), one pair per thread.
const scratchIn = Buffer.allocUnsafeSlow(COPY_STEP + WORD);
const scratchOut = Buffer.allocUnsafeSlow(COPY_STEP + WORD);

/**
 * Copies `src` into `dst` at `at`, as dst.set(src, at) would, at memory speed whatever the alignment: when
 * shared memory is involved and the two sides are not word-congruent, each step goes through ordinary scratch
 * memory at the offsets that make every copy touching shared memory congruent (ordinary to ordinary is a
 * plain memmove).
 */
export function copyBytes(src: Uint8Array, dst: Uint8Array, at: number): void {
  const srcShared = src.buffer instanceof SharedArrayBuffer;
  const dstShared = dst.buffer instanceof SharedArrayBuffer;
  if ((!srcShared && !dstShared) || ((src.byteOffset - dst.byteOffset - at) & (WORD - 1)) === 0) {
    dst.set(src, at);
    return;
  }
  for (let done = 0; done < src.length; done += COPY_STEP) {
    const n = Math.min(COPY_STEP, src.length - done);
    let piece = src.subarray(done, done + n);
    if (srcShared) {
      const phase = piece.byteOffset & (WORD - 1);
      scratchIn.set(piece, phase);
      piece = scratchIn.subarray(phase, phase + n);
    }
    const phase = (dst.byteOffset + at + done) & (WORD - 1);
    scratchOut.set(piece, phase);
    dst.set(scratchOut.subarray(phase, phase + n), at + done);
  }
}

const ZEROS = Buffer.alloc(1024 * 1024 + WORD);

/**
 * Sets bytes [from, to) of `buf` to zero. TypedArray.fill on shared memory is element-wise too (4.3 GB/s
 * here), and a backup of the disk-like image zeroes ~0.9 GB of holes on the main thread: this copies zeros
 * from a source offset congruent with each target run instead.
 */
export function zeroFill(buf: Uint8Array, from = 0, to = buf.length): void {
  for (let at = from; at < to; at += ZEROS.length - WORD) {
    const phase = (buf.byteOffset + at) & (WORD - 1);
    buf.set(ZEROS.subarray(phase, phase + Math.min(ZEROS.length - WORD, to - at)), at);
  }
}

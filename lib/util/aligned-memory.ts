// Page-aligned shared memory, for writes that bypass the page cache (O_DIRECT needs the memory, the file
// offset and the length on the device's block boundaries). JavaScript cannot ask where a buffer lives, and
// Node's allocator gives 16-byte alignment; a WebAssembly memory, though, starts on a page boundary (V8 maps
// it on its own), and a shared one is a SharedArrayBuffer like any other. Buffers made here are remembered,
// so a view's alignment can be told from its offset.

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

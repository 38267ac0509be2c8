// Sparse images for the hole tests and the sparse benchmark: a huge image holding a little data at
// scattered places, where its data lies (the native helper, as the provider asks), how much of it the
// filesystem allocated, and a bit-exact comparison of two images over given ranges.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, stat, statfs } from 'node:fs/promises';
import type { ByteRange } from '../../lib/engine/ports.ts';
import { SEEKMAP_PATH, seekmapHoleMap } from '../../lib/volumes/sparse.ts';
import { buildNative } from '../../scripts/build-native.mjs';

export const TiB = 1024 ** 4;

/** Builds the helper if needed; throws when it cannot (these tests are about holes). */
export function requireSeekmap(): string {
  const built = buildNative({ quiet: true });
  if (!built || !existsSync(SEEKMAP_PATH)) throw new Error('the native helper (scripts/build-native.mjs) could not be built: is a C compiler installed?');
  return built;
}

/**
 * A folder on a filesystem that takes files of `sizeBytes` and has SEEK_DATA (tmpfs at /dev/shm: ext4
 * refuses files of 16 TiB). Throws with the reason when there is none.
 */
export async function sparseRoot(sizeBytes: number): Promise<string> {
  const root = '/dev/shm';
  if (!existsSync(root)) throw new Error(`a ${sizeBytes / TiB} TiB sparse image needs tmpfs at ${root}, which this machine lacks`);
  const fs = await statfs(root);
  if (fs.type !== 0x01021994) throw new Error(`${root} is not tmpfs (type 0x${fs.type.toString(16)}): it may refuse a ${sizeBytes / TiB} TiB image`);
  return root;
}

function prng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * Makes `path` a sparse image of `sizeBytes` with `pieces` pieces of `pieceBytes` data at scattered
 * 4 KiB-aligned offsets (not overlapping, most not block-aligned), half random and half text-like. Returns
 * the pieces, ascending.
 */
export async function writeScattered(path: string, sizeBytes: number, pieces: number, pieceBytes: number, seed = 1): Promise<ByteRange[]> {
  const rand = prng(seed);
  const slots = Math.floor(sizeBytes / (2 * pieceBytes)); // every piece in its own slot: none overlap
  const chosen = new Set<number>();
  while (chosen.size < Math.min(pieces, slots)) chosen.add(Math.floor(rand() * slots));
  const text = Buffer.from('the volume backup block server disk snapshot restore chunk pack index manifest '.repeat(Math.ceil(pieceBytes / 80))).subarray(0, pieceBytes);
  const ranges = [...chosen]
    .sort((a, b) => a - b)
    .map((slot) => ({ offset: slot * 2 * pieceBytes + Math.floor(rand() * (pieceBytes / 4096)) * 4096, length: pieceBytes }));
  const fh = await open(path, 'w');
  try {
    await fh.truncate(sizeBytes);
    for (const [i, r] of ranges.entries()) {
      const data = i % 2 ? randomBytes(pieceBytes) : Buffer.from(text);
      if (!(i % 2)) data.writeUInt32LE(i, 0); // text pieces differ from each other
      await fh.write(data, 0, data.length, r.offset);
    }
  } finally {
    await fh.close();
  }
  return ranges;
}

/** Where the file holds data, as the helper reports it (holes under `minHole` merged). */
export async function dataRangesOf(path: string, minHole = 4096): Promise<ByteRange[]> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const ranges = await seekmapHoleMap(requireSeekmap()).dataRanges(fh, 0, size, minHole);
    if (!ranges) throw new Error(`${path}: the helper cannot tell where its data lies`);
    return ranges;
  } finally {
    await fh.close();
  }
}

/** Bytes the filesystem allocated to the file. */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** SHA-256 over the given ranges of a file, read in pieces of at most 8 MiB. */
export async function hashRanges(path: string, ranges: ByteRange[]): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(8 * 1024 * 1024);
    for (const r of ranges) {
      for (let at = r.offset; at < r.offset + r.length; ) {
        const n = Math.min(buf.length, r.offset + r.length - at);
        const { bytesRead } = await fh.read(buf, 0, n, at);
        if (bytesRead !== n) throw new Error(`${path}: short read at ${at}`);
        h.update(buf.subarray(0, n));
        at += n;
      }
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

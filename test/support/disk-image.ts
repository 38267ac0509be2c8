// Disk-like test images: per 1 MiB region, chosen by a seeded generator,
//   40% zeros (unallocated space), 35% text-like (compressible, ~3x with zstd), 20% random
//   (encrypted or compressed files), 5% a copy of an earlier region (duplicated files).
// Used by the integration tests and the engine benchmark.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

const REGION = 1024 * 1024;
const WORDS = 'the of and to in is for on that by this with volume backup block server disk snapshot restore chunk pack index manifest status available error project 0 1 2 3 4 5 6 7 8 9 {"id": "name": true false null\n'.split(' ');

function prng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function textPool(rand: () => number, size: number): Buffer {
  const parts: string[] = [];
  let len = 0;
  while (len < size) {
    const w = WORDS[Math.floor(rand() * WORDS.length)]! + (rand() < 0.1 ? String(Math.floor(rand() * 100000)) : '') + ' ';
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export interface ImageMix {
  zero: number;
  text: number;
  random: number;
  copy: number;
}

export const DISK_LIKE_MIX: ImageMix = { zero: 0.4, text: 0.35, random: 0.2, copy: 0.05 };

/** Writes a disk-like image of `sizeBytes` (any size, not only whole regions) to `path`. */
export async function writeDiskImage(path: string, sizeBytes: number, seed = 1, mix: ImageMix = DISK_LIKE_MIX): Promise<void> {
  const rand = prng(seed);
  const pool = textPool(rand, 4 * REGION);
  const fh = await open(path, 'w+');
  try {
    await fh.truncate(sizeBytes);
    const regions = Math.ceil(sizeBytes / REGION);
    const written: number[] = [];
    for (let r = 0; r < regions; r++) {
      const len = Math.min(REGION, sizeBytes - r * REGION);
      const pick = rand();
      let data: Buffer | undefined;
      if (pick < mix.zero) data = undefined;
      else if (pick < mix.zero + mix.text) {
        const start = Math.floor(rand() * (pool.length - REGION));
        data = Buffer.from(pool.subarray(start, start + len));
        // sprinkle a few unique bytes so text regions are not all identical chunks
        for (let k = 0; k < 16; k++) data[Math.floor(rand() * len)] = Math.floor(rand() * 256);
      } else if (pick < mix.zero + mix.text + mix.random || written.length === 0) data = randomBytes(len);
      else {
        const src = written[Math.floor(rand() * written.length)]!;
        data = Buffer.alloc(len);
        await fh.read(data, 0, len, src * REGION);
      }
      if (data) {
        await fh.write(data, 0, len, r * REGION);
        if (len === REGION) written.push(r);
      }
    }
  } finally {
    await fh.close();
  }
}

/** Overwrites a 4 KiB run of random bytes inside `fraction` of the blocks, each block at most once. Returns the blocks. */
export async function scatterWrites(path: string, sizeBytes: number, blockSize: number, fraction: number, seed = 7): Promise<number[]> {
  const rand = prng(seed);
  const blocks = Math.floor(sizeBytes / blockSize);
  const count = Math.max(1, Math.round(blocks * fraction));
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(rand() * blocks));
  const fh = await open(path, 'r+');
  try {
    for (const b of chosen) {
      const at = b * blockSize + Math.floor(rand() * (blockSize - 4096));
      await fh.write(randomBytes(4096), 0, 4096, at);
    }
  } finally {
    await fh.close();
  }
  return [...chosen].sort((a, b) => a - b);
}

export async function sha256File(path: string, length?: number): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, length === undefined ? {} : { start: 0, end: length - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Number of distinct blocks that are not all zeros: what a fresh key domain has to store. */
export async function distinctNonZeroBlocks(path: string, blockSize: number): Promise<number> {
  const seen = new Set<string>();
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(blockSize);
    for (let at = 0; ; at += blockSize) {
      const { bytesRead } = await fh.read(buf, 0, blockSize, at);
      if (bytesRead === 0) break;
      const block = buf.subarray(0, bytesRead);
      if (block.some((b) => b !== 0)) seen.add(createHash('sha256').update(block).digest('hex'));
    }
  } finally {
    await fh.close();
  }
  return seen.size;
}

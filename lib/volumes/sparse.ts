// Where an image file holds data, and giving ranges back to the filesystem, through the native helper
// (native/seekmap.c, built into .cache/native by scripts/build-native.mjs): Node has neither lseek's
// SEEK_DATA/SEEK_HOLE nor fallocate. The helper works on a descriptor the provider already opened and
// checked (O_NOFOLLOW, device and inode), handed to it as its descriptor 3; it never opens a path.
// Without the helper the provider cannot tell holes from data and reads everything, as before.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import type { ByteRange } from '../engine/ports.ts';

/** Where scripts/build-native.mjs puts the helper. */
export const SEEKMAP_PATH = resolve(import.meta.dirname, '../../.cache/native/seekmap');

/** The helper's exit code for "this descriptor or filesystem cannot do that". */
const UNSUPPORTED = 4;

export interface HoleMap {
  /**
   * The ranges of [offset, offset + length) of the open file `fd` that may hold data, ascending and
   * disjoint (holes shorter than `minHole` count as data); undefined when the file cannot tell (a block
   * device): then everything may hold data.
   */
  dataRanges(fd: number, offset: number, length: number, minHole: number): Promise<ByteRange[] | undefined>;
  /** Deallocates the ranges of `fd` (they read as zeros, the size stays); false when the filesystem cannot. */
  punch(fd: number, ranges: ByteRange[]): Promise<boolean>;
}

class HelperError extends Error {
  override name = 'SparseHelperError';
}

/** Runs the helper on `fd`; resolves with its exit code and output. */
function runHelper(helper: string, fd: number, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(helper, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', fd] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.once('error', fail);
    child.once('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString().trim();
      if (code === null) fail(new HelperError(`${helper} ended by ${signal}${stderr ? `: ${stderr}` : ''}`));
      else ok({ code, stdout: Buffer.concat(out).toString(), stderr });
    });
    if (input !== undefined) {
      child.stdin!.on('error', () => {}); // an early exit is reported by its code
      child.stdin!.end(input);
    }
  });
}

/** The helper at `helper` as a HoleMap. */
export function seekmapHoleMap(helper: string): HoleMap {
  return {
    async dataRanges(fd, offset, length, minHole) {
      if (length <= 0) return [];
      const { code, stdout, stderr } = await runHelper(helper, fd, ['data', String(offset), String(offset + length), String(minHole)]);
      if (code === UNSUPPORTED) return undefined;
      if (code !== 0) throw new HelperError(`${helper} could not list data ranges (exit ${code}): ${stderr}`);
      const ranges: ByteRange[] = [];
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        const [at, len] = line.split(' ').map(Number);
        if (!Number.isSafeInteger(at) || !Number.isSafeInteger(len)) throw new HelperError(`${helper} printed ${JSON.stringify(line)}`);
        ranges.push({ offset: at!, length: len! });
      }
      return ranges;
    },
    async punch(fd, ranges) {
      if (!ranges.length) return true;
      const input = ranges.map((r) => `${r.offset} ${r.length}\n`).join('');
      const { code, stderr } = await runHelper(helper, fd, ['punch'], input);
      if (code === UNSUPPORTED) return false;
      if (code !== 0) throw new HelperError(`${helper} could not punch holes (exit ${code}): ${stderr}`);
      return true;
    },
  };
}

let found: HoleMap | null | undefined;

/** The built helper, or undefined (said once on stderr) when it was not built. */
export function defaultHoleMap(): HoleMap | undefined {
  if (found === undefined) {
    try {
      accessSync(SEEKMAP_PATH, constants.X_OK);
      found = seekmapHoleMap(SEEKMAP_PATH);
    } catch {
      found = null;
      console.error(`openvbs: ${SEEKMAP_PATH} is missing (run node scripts/build-native.mjs); holes of sparse images are read as data`);
    }
  }
  return found ?? undefined;
}


// Where an image file holds data, and giving ranges back to the filesystem, through the native helper
// (native/seekmap.c, built into .cache/native by scripts/build-native.mjs): Node has neither lseek's
// SEEK_DATA/SEEK_HOLE nor fallocate. The helper works on a descriptor the provider already opened and
// checked (O_NOFOLLOW, device and inode), handed to it as its descriptor 3; it never opens a path.
//
// Forking a Node process that holds a few hundred MB costs milliseconds, and a backup asks once per
// segment (up to 2,048 of them), each segment on its own descriptor. So one helper serves each file (by
// device and inode, and whether it may write), asked line by line, and ends when idle: it holds the same
// file as the descriptor it was given, which cannot be swapped for another while it is open.
// Without the helper the provider cannot tell holes from data and reads everything, as before.
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { ByteRange } from '../engine/ports.ts';

/** Where scripts/build-native.mjs puts the helper. */
export const SEEKMAP_PATH = resolve(import.meta.dirname, '../../.cache/native/seekmap');

/** A helper nobody asked for this long ends (its file is then no longer held open). */
const IDLE_MS = 5_000;

export interface HoleMap {
  /**
   * The ranges of [offset, offset + length) of the open file that may hold data, ascending and disjoint
   * (holes shorter than `minHole` count as data); undefined when the file cannot tell (a block device):
   * then everything may hold data.
   */
  dataRanges(fh: FileHandle, offset: number, length: number, minHole: number): Promise<ByteRange[] | undefined>;
  /** Deallocates the ranges of the file, opened for writing (they read as zeros, the size stays); false when the filesystem cannot. */
  punch(fh: FileHandle, ranges: ByteRange[]): Promise<boolean>;
}

export class SparseHelperError extends Error {
  override name = 'SparseHelperError';
}

interface Pending {
  lines: string[];
  done(answer: { status: string; lines: string[] }): void;
  fail(err: Error): void;
}

/** One helper process on one open file: requests in order, answers in the same order. */
class Helper {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly pending: Pending[] = [];
  private buffered = '';
  private stderr = '';
  private idle: NodeJS.Timeout | undefined;
  ended = false;

  private readonly idleMs: number;
  private readonly onEnd: () => void;

  constructor(path: string, fd: number, idleMs: number, onEnd: () => void) {
    this.idleMs = idleMs;
    // Three pipes and the file as descriptor 3 (typed as a ChildProcess for the fourth entry).
    this.child = spawn(path, ['serve'], { stdio: ['pipe', 'pipe', 'pipe', fd] }) as ChildProcessByStdio<Writable, Readable, Readable>;
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => this.receive(d));
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    this.child.stdin.on('error', () => {}); // an ended helper is reported once, below
    this.onEnd = onEnd;
    const end = (why: string) => {
      if (this.ended) return;
      this.ended = true;
      clearTimeout(this.idle);
      onEnd();
      const err = new SparseHelperError(`${path} ${why}${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
      for (const p of this.pending.splice(0)) p.fail(err);
    };
    this.child.once('error', (err) => end(`could not run (${err.message})`));
    this.child.once('close', (code, signal) => end(`ended (${signal ?? `exit ${code}`})`));
    this.holdLoop(false);
  }

  /** While a request is out the helper keeps the event loop alive; idle, it does not. */
  private holdLoop(hold: boolean) {
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr] as Array<Readable & { ref?(): void; unref?(): void }>) {
      if (hold) s.ref?.();
      else s.unref?.();
    }
    if (hold) this.child.ref();
    else this.child.unref();
  }

  private receive(chunk: string) {
    const text = this.buffered + chunk;
    let at = 0;
    for (let nl; (nl = text.indexOf('\n', at)) >= 0; at = nl + 1) {
      const line = text.slice(at, nl);
      const p = this.pending[0];
      if (!p) continue;
      if (line === 'ok' || line === 'unsupported' || line.startsWith('error ')) {
        this.pending.shift();
        p.done({ status: line, lines: p.lines });
        if (!this.pending.length) this.rest();
      } else p.lines.push(line);
    }
    this.buffered = text.slice(at);
  }

  private rest() {
    this.holdLoop(false);
    clearTimeout(this.idle);
    // Retired at once, so no request can reach a helper that is ending: the next one starts a fresh helper.
    this.idle = setTimeout(() => {
      this.ended = true;
      this.onEnd();
      this.child.stdin.end();
    }, this.idleMs);
    this.idle.unref();
  }

  ask(request: string): Promise<{ status: string; lines: string[] }> {
    if (this.ended) return Promise.reject(new SparseHelperError('the helper has ended'));
    clearTimeout(this.idle);
    this.holdLoop(true);
    return new Promise((done, fail) => {
      this.pending.push({ lines: [], done, fail });
      this.child.stdin.write(`${request}\n`);
    });
  }
}

/**
 * The helper at `path` as a HoleMap: one helper process per file and access mode, shared while in use,
 * ending after `idleMs` without a request.
 */
export function seekmapHoleMap(path: string, idleMs = IDLE_MS): HoleMap {
  const helpers = new Map<string, Helper>();
  const helperFor = async (fh: FileHandle, write: boolean) => {
    const st = await fh.stat({ bigint: true });
    const key = `${st.dev}:${st.ino}:${write ? 'w' : 'r'}`;
    let helper = helpers.get(key);
    if (!helper || helper.ended) {
      const made: Helper = new Helper(path, fh.fd, idleMs, () => {
        if (helpers.get(key) === made) helpers.delete(key);
      });
      helpers.set(key, (helper = made));
    }
    return helper;
  };
  const failed = (what: string, status: string) => new SparseHelperError(`${path}: ${what}: ${status.slice('error '.length)}`);
  return {
    async dataRanges(fh, offset, length, minHole) {
      if (length <= 0) return [];
      const { status, lines } = await (await helperFor(fh, false)).ask(`data ${offset} ${offset + length} ${minHole}`);
      if (status === 'unsupported') return undefined;
      if (status !== 'ok') throw failed('listing data ranges', status);
      return lines.map((line) => {
        const [at, len] = line.split(' ').map(Number);
        if (!Number.isSafeInteger(at) || !Number.isSafeInteger(len)) throw new SparseHelperError(`${path} answered ${JSON.stringify(line)}`);
        return { offset: at!, length: len! };
      });
    },
    async punch(fh, ranges) {
      if (!ranges.length) return true;
      const helper = await helperFor(fh, true);
      const answers = await Promise.all(ranges.map((r) => helper.ask(`punch ${r.offset} ${r.length}`)));
      const bad = answers.find((a) => a.status.startsWith('error '));
      if (bad) throw failed('punching a hole', bad.status);
      return answers.every((a) => a.status === 'ok');
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

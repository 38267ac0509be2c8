// A writer that keeps stamping one increasing sequence number across several disk images in turn (disk 0,
// 1, 2, then the next number), for crash-consistency tests: disks captured at one instant agree (no disk
// ahead of another by more than the one write in flight). It runs in its own process group; the caller
// kills the group (`stopWriters`) whatever the test did. Freeze and thaw hooks that hold it are given too.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';

/** Stamps go into 4 KiB slots in turn, in the first SLOTS * 4 KiB of each disk. */
export const SLOT = 4096;
export const SLOTS = 1024;

// Writes seq to slot (seq % SLOTS) of each disk in turn, for seq = 1, 2, 3...; says "ready" once every disk
// holds a stamp. Synchronous writes: a stop lands between two of them.
const WRITER = `
const fs = require('node:fs');
const fds = process.argv.slice(1).map((p) => fs.openSync(p, 'r+'));
const buf = Buffer.alloc(${SLOT}, 0x5a);
for (let seq = 1; ; seq++) {
  buf.writeBigUInt64LE(BigInt(seq), 0);
  for (const fd of fds) fs.writeSync(fd, buf, 0, buf.length, (seq % ${SLOTS}) * ${SLOT});
  if (seq === 1000) process.stdout.write('ready\\n');
}
`;

const running: ChildProcess[] = [];

/** Starts the writer on the disks (own process group); resolves once it has stamped every disk. */
export async function startWriter(paths: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', WRITER, ...paths], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  running.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
  });
  return child;
}

/** Kills every writer's process group. */
export function stopWriters(): void {
  for (const w of running.splice(0)) {
    try {
      process.kill(-w.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The newest stamp on a disk image (the writer's sequence number when it was captured). */
export async function newestStamp(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const region = Buffer.alloc(SLOTS * SLOT);
    await fh.read(region, 0, region.length, 0);
    let newest = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      if (region[slot * SLOT + 8] !== 0x5a) continue; // never stamped
      newest = Math.max(newest, Number(region.readBigUInt64LE(slot * SLOT)));
    }
    return newest;
  } finally {
    await fh.close();
  }
}

/** Freeze hook: stops the process and returns only once the kernel says it is stopped. */
export const stopHook = (pid: number) => ['/bin/sh', '-c', 'kill -STOP "$1" && until grep -q "^State:[[:space:]]*T" "/proc/$1/status"; do :; done', 'freeze', String(pid)];
/** Thaw hook: lets it go on. */
export const continueHook = (pid: number) => ['/bin/kill', '-CONT', String(pid)];

/** Disks captured at one instant while the writer stamped them in order: n, n, n or n, n, n-1 or n, n-1, n-1. */
export function stampsAgree(stamps: number[]): boolean {
  for (let i = 1; i < stamps.length; i++) if (stamps[i]! > stamps[i - 1]!) return false;
  return stamps[0]! - stamps.at(-1)! <= 1;
}

// Child processes of the race. Each tool's phase runs under `/usr/bin/time`, so wall time, user + system
// CPU and peak RSS are measured the same way for restic and for OpenVBS. Every child gets its own process
// group, so stopping the race (SIGINT, a failure) stops a child and whatever it started.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { machineTicks } from '../lib/cpu-accounting.ts';

const running = new Set<ChildProcess>();
let refusing = false;

export class StoppingError extends Error {
  override name = 'StoppingError';
}

/** From now on run() starts nothing: the race is stopping. */
export function refuseNewChildren(): void {
  refusing = true;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Runs even while the race is stopping: the cleanup's own commands (umount). */
  cleanup?: boolean;
}

export interface RunOutput {
  stdout: string;
  stderr: string;
}

function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** Runs `cmd` to completion; a non-zero exit is an error carrying the end of its output. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunOutput> {
  if (refusing && !options.cleanup) return Promise.reject(new StoppingError(`not starting ${cmd}: stopping`));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${signal ?? code}\n${tail(stderr || stdout)}`));
    });
  });
}

export interface ChildTiming {
  wallS: number;
  /** User + system CPU of the child and everything it waited for. */
  cpuS: number;
  userS: number;
  sysS: number;
  maxRssBytes: number;
  /** CPU the whole machine spent meanwhile (the child, the emulator, anything else). */
  machineCpuS: number;
}

/** Runs `cmd` under `/usr/bin/time -f '%e %U %S %M'`. */
export async function timedRun(cmd: string, args: string[], timeFile: string, options: RunOptions = {}): Promise<RunOutput & { timing: ChildTiming }> {
  const m0 = machineTicks();
  const output = await run('/usr/bin/time', ['-o', timeFile, '-f', '%e %U %S %M', cmd, ...args], options);
  const m1 = machineTicks();
  // On a non-zero exit time writes a line before its own; run() has thrown by then, so the last line is ours.
  const last = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1) ?? '';
  await rm(timeFile, { force: true });
  const [wallS, userS, sysS, rssKiB] = last.split(' ').map(Number);
  if ([wallS, userS, sysS, rssKiB].some((v) => v === undefined || !Number.isFinite(v))) throw new Error(`unreadable /usr/bin/time output: ${JSON.stringify(last)}`);
  return {
    ...output,
    timing: { wallS: wallS!, userS: userS!, sysS: sysS!, cpuS: +(userS! + sysS!).toFixed(2), maxRssBytes: rssKiB! * 1024, machineCpuS: (m1.busy - m0.busy) / 100 },
  };
}

/** Stops every child still running (its whole process group): SIGTERM, then SIGKILL after 3 s. */
export async function stopChildren(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
          const pid = child.pid;
          child.once('close', () => resolve());
          const signal = (sig: NodeJS.Signals) => {
            try {
              process.kill(-pid, sig);
            } catch { /* already gone */ }
          };
          signal('SIGTERM');
          setTimeout(() => signal('SIGKILL'), 3000).unref();
        }),
    ),
  );
}

/**
 * Writes dirty pages back and drops the page cache, so each phase reads from the disk. Resolves to false
 * when the machine does not allow dropping (not root, a read-only /proc): then only the writeback happens.
 */
export async function dropPageCache(): Promise<boolean> {
  await run('sync', []);
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

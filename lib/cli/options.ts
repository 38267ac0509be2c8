// Option and argument parsers the commands share, and the `--wait [--timeout S]` pair of the commands
// that start a job. A parser's InvalidArgumentError becomes a usage error naming the option.
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import type { WaitOptions } from './context.ts';

export function nonEmpty(value: string): string {
  if (value === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new InvalidArgumentError('must be a positive integer');
  }
  return Number(value);
}

/** Seconds (fractions allowed) as milliseconds. */
export function positiveSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return Math.round(n * 1000);
}

export interface WaitFlags {
  wait?: boolean;
  /** Milliseconds. */
  timeout?: number;
}

export function timeoutOption(): Option {
  return new Option('--timeout <seconds>', 'give up waiting after this long (exit 1; the job goes on)').argParser(positiveSeconds);
}

/** `--wait` and `--timeout` for a command that starts a job. */
export function addWaitOptions(command: Command): Command {
  return command.option('--wait', 'follow the job until it ends (progress on stderr)').addOption(timeoutOption());
}

/** The wait the flags ask for; undefined without `--wait`. */
export function waitOptions(flags: WaitFlags, command: Command): WaitOptions | undefined {
  if (!flags.wait) {
    if (flags.timeout !== undefined) command.error('--timeout needs --wait');
    return undefined;
  }
  return flags.timeout === undefined ? {} : { timeoutMs: flags.timeout };
}

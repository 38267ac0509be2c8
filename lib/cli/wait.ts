// Following a job until it ends: polling (with a clock and sleep that tests replace), the throughput
// estimate from `bytes_done` over time, and the progress display on stderr.
import { ApiError, NetworkError } from './client.ts';
import type { Job } from './client.ts';
import { fitLine, formatBytes, formatElapsed, formatProgress, formatRate } from './render.ts';

export const POLL_INTERVAL_MS = 500;
/** Consecutive failed polls (no answer, 5xx) tolerated before giving up. */
export const MAX_POLL_FAILURES = 5;

export const isFinished = (job: Job) => job.status === 'SUCCESS' || job.status === 'FAIL';

/** Throughput from the `bytes_done` seen since the first poll: (done - done0) / (t - t0). */
export class RateMeter {
  private t0: number | undefined;
  private b0 = 0;

  /** Records a sample; returns bytes per second so far (0 until there is a measurable change). */
  sample(timeMs: number, bytesDone: number): number {
    if (this.t0 === undefined || bytesDone < this.b0) {
      this.t0 = timeMs;
      this.b0 = bytesDone;
      return 0;
    }
    const dt = (timeMs - this.t0) / 1000;
    return dt > 0 ? (bytesDone - this.b0) / dt : 0;
  }
}

export interface WaitDeps {
  getJob(id: string): Promise<Job>;
  now(): number;
  sleep(ms: number): Promise<void>;
  intervalMs?: number;
  /** Give up after this long; undefined waits until the job ends. */
  timeoutMs?: number;
  /** Stop waiting (Ctrl-C); the job goes on. */
  signal?: AbortSignal;
  /** Called after every poll. */
  onPoll?(job: Job): void;
}

export type WaitOutcome = 'finished' | 'timeout' | 'aborted';

export interface WaitResult {
  outcome: WaitOutcome;
  /** The last job seen. */
  job: Job;
  elapsedMs: number;
}

function transient(err: unknown) {
  return err instanceof NetworkError || (err instanceof ApiError && (err.status >= 500 || err.status === 429));
}

/** Polls the job until SUCCESS or FAIL, the timeout, or the abort signal. */
export async function waitForJob(jobId: string, deps: WaitDeps): Promise<WaitResult> {
  const interval = deps.intervalMs ?? POLL_INTERVAL_MS;
  const start = deps.now();
  let failures = 0;
  let last: Job | undefined;
  for (;;) {
    let job: Job | undefined;
    try {
      job = await deps.getJob(jobId);
      failures = 0;
    } catch (err) {
      if (!transient(err) || ++failures >= MAX_POLL_FAILURES || last === undefined) throw err;
    }
    if (job) {
      last = job;
      deps.onPoll?.(job);
      if (isFinished(job)) return { outcome: 'finished', job, elapsedMs: deps.now() - start };
    }
    const elapsed = deps.now() - start;
    if (deps.signal?.aborted) return { outcome: 'aborted', job: last as Job, elapsedMs: elapsed };
    if (deps.timeoutMs !== undefined && elapsed >= deps.timeoutMs) return { outcome: 'timeout', job: last as Job, elapsedMs: elapsed };
    const wait = deps.timeoutMs === undefined ? interval : Math.min(interval, Math.max(0, deps.timeoutMs - elapsed));
    await deps.sleep(wait);
    if (deps.signal?.aborted) return { outcome: 'aborted', job: last as Job, elapsedMs: deps.now() - start };
  }
}

const JOB_LABELS: Record<string, string> = {
  bksCreateBackup: 'backup',
  bksRestoreBackup: 'restore',
  bksDeleteBackup: 'delete',
  bksCreateServerBackup: 'server backup',
  bksRestoreServerBackup: 'server restore',
  bksDeleteServerBackup: 'server delete',
};

export const jobLabel = (job: Pick<Job, 'job_type'>) => (job.job_type && JOB_LABELS[job.job_type]) || job.job_type || 'job';

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The live line for a running job: `backup   RUNNING  [####----]  45%  …`. */
export function formatJobLine(job: Job, elapsedMs: number, rate: number): string {
  const progress = formatProgress(num(job.bytes_done), num(job.bytes_total), elapsedMs, { rate, percent: num(job.progress) });
  return `${jobLabel(job).padEnd(7)} ${job.status.padEnd(7)} ${progress}`;
}

function parseTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * The one line that ends the wait: `backup job J SUCCESS in 6.2 s, 512.0 MB at 82.6 MB/s (backup_id B)`.
 * Duration and throughput come from the job's own begin/end time when it has them.
 */
export function formatJobSummary(job: Job, elapsedMs: number): string {
  const begin = parseTime(job.begin_time);
  const end = parseTime(job.end_time);
  const ms = begin !== undefined && end !== undefined && end >= begin ? end - begin : elapsedMs;
  const verb = job.status === 'SUCCESS' || job.status === 'FAIL' ? (job.status === 'FAIL' ? 'after' : 'in') : 'still running after';
  let line = `${jobLabel(job)} job ${job.job_id} ${job.status} ${verb} ${formatElapsed(ms)}`;
  const total = num(job.bytes_total);
  if (job.status === 'SUCCESS' && total > 0) {
    line += `, ${formatBytes(total)}`;
    if (ms > 0) line += ` at ${formatRate(total / (ms / 1000))}`;
  }
  const ids = Object.entries(job.entities ?? {})
    .filter(([k, v]) => (k === 'backup_id' || k === 'volume_id') && v)
    .map(([k, v]) => `${k} ${v}`);
  if (ids.length) line += ` (${ids.join(', ')})`;
  return line;
}

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Draws the job's progress on a terminal (one line, redrawn in place), or nothing but the final
 * line when the stream is not a terminal.
 */
export class ProgressDisplay {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly meter = new RateMeter();
  private readonly start: number;
  private drawn = false;

  constructor(stream: ProgressStream, now: () => number) {
    this.stream = stream;
    this.now = now;
    this.start = now();
  }

  update(job: Job): void {
    const t = this.now();
    const rate = this.meter.sample(t, num(job.bytes_done));
    if (!this.stream.isTTY || isFinished(job)) return;
    this.stream.write(`\r${fitLine(formatJobLine(job, t - this.start, rate), this.stream.columns)}\x1b[K`);
    this.drawn = true;
  }

  /** Ends the live line (before an error message). */
  abandon(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  /** Replaces the live line with `line` (and a newline). */
  finish(line: string): void {
    this.stream.write(`${this.drawn ? '\r\x1b[K' : ''}${line}\n`);
    this.drawn = false;
  }
}

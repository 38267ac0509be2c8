// What every `openvbs` command shares: the process's streams and environment (passed in, so tests run
// the CLI in-process), the API client (connected on first use), text or JSON output, following a job,
// and the one place that turns a failure into an error line (or JSON) and an exit status.
import { ApiError, NetworkError, OpenVbsClient } from './client.ts';
import type { Job } from './client.ts';
import { resolveConnection } from './connection.ts';
import type { ConnectionFlags } from './connection.ts';
import { CliError, EXIT_FAILURE, EXIT_INTERRUPTED } from './errors.ts';
import { formatKeyValue } from './render.ts';
import { formatJobSummary, ProgressDisplay, waitForJob } from './wait.ts';
import type { ProgressStream, WaitResult } from './wait.ts';

export interface OutStream {
  write(chunk: string): unknown;
  columns?: number;
}

export interface CliIO {
  stdout: OutStream;
  stderr: ProgressStream;
  env: Readonly<Record<string, string | undefined>>;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  pollIntervalMs?: number;
  /** Aborted on Ctrl-C: a wait stops (the job goes on). */
  signal?: AbortSignal;
  /** Told when a wait starts and ends (Ctrl-C outside a wait may simply end the process). */
  onWaiting?: (waiting: boolean) => void;
}

export interface GlobalOptions extends ConnectionFlags {
  json?: boolean;
}

/** What draws a followed job's progress (default: one line, ProgressDisplay). */
export type JobDisplay = Pick<ProgressDisplay, 'update' | 'abandon' | 'finish'>;
export type JobDisplayFactory = (stream: ProgressStream, now: () => number) => JobDisplay;

export interface WaitOptions {
  /** Give up after this long (milliseconds); undefined waits until the job ends. */
  timeoutMs?: number;
}

const HINTS: Record<number, string> = {
  401: 'check the token (--token, OPENVBS_TOKEN or the connection file): it must be a token of the project',
};

export class CliContext {
  readonly io: CliIO;
  private readonly globals: () => GlobalOptions;
  private connected: OpenVbsClient | undefined;

  /** `globals`: the global options as parsed so far (read when needed, not at construction). */
  constructor(io: CliIO, globals: () => GlobalOptions) {
    this.io = io;
    this.globals = globals;
  }

  get json(): boolean {
    return this.globals().json === true;
  }

  /** The API client, connected as the flags, the environment or the local service's connection file say. */
  get client(): OpenVbsClient {
    this.connected ??= new OpenVbsClient({ ...resolveConnection(this.globals(), this.io.env), ...(this.io.fetch ? { fetch: this.io.fetch } : {}) });
    return this.connected;
  }

  /** `--json`: the API's JSON; else the human form. */
  print(json: unknown, human: () => string): void {
    this.io.stdout.write(this.json ? JSON.stringify(json, null, 2) + '\n' : human());
  }

  /** A remark for people on stderr (none with `--json`). */
  note(text: string): void {
    if (!this.json) this.io.stderr.write(text + '\n');
  }

  /** Prints a started job, or follows it with `--wait`. */
  async started(res: { job_id: string }, wait: WaitOptions | undefined, display?: JobDisplayFactory): Promise<void> {
    if (!wait) {
      this.print(res, () => formatKeyValue(res));
      this.note(`follow it with: openvbs job wait ${res.job_id}`);
      return;
    }
    await this.follow(res.job_id, wait, display);
  }

  /** Follows a job to its end, with a progress bar on a terminal; a failed or unfinished job throws. */
  async follow(jobId: string, wait: WaitOptions, makeDisplay?: JobDisplayFactory): Promise<void> {
    const now = this.io.now ?? Date.now;
    const display = this.json ? undefined : (makeDisplay ?? ((stream, clock) => new ProgressDisplay(stream, clock)))(this.io.stderr, now);
    let result: WaitResult;
    this.io.onWaiting?.(true);
    try {
      result = await waitForJob(jobId, {
        getJob: (id) => this.client.getJob(id),
        now,
        sleep: this.io.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
        intervalMs: this.io.pollIntervalMs,
        timeoutMs: wait.timeoutMs,
        signal: this.io.signal,
        onPoll: (job) => display?.update(job),
      });
    } catch (e) {
      display?.abandon();
      throw e;
    } finally {
      this.io.onWaiting?.(false);
    }
    const job: Job = result.job;
    display?.finish(formatJobSummary(job, result.elapsedMs));
    if (result.outcome === 'aborted') {
      const message = `stopped waiting; the job goes on (openvbs job wait ${jobId})`;
      throw new CliError('interrupted', message, { exitCode: EXIT_INTERRUPTED, line: message });
    }
    if (this.json || (result.outcome === 'finished' && job.status === 'SUCCESS')) this.print(job, () => formatKeyValue(job));
    if (result.outcome === 'timeout') {
      throw new CliError('timeout', `timed out after ${Math.round(result.elapsedMs / 1000)} s waiting for job ${jobId} (status ${job.status}); it goes on`);
    }
    if (job.status === 'FAIL') {
      const reason = job.fail_reason || 'no reason given';
      throw new CliError(job.error_code || 'job_failed', reason, { line: `error: ${job.error_code || 'job failed'}: ${reason}` });
    }
  }

  /** Reports a failure on stderr (one JSON line with `--json`) and returns the exit status. */
  report(err: unknown): number {
    const { code, message, exitCode, lines } = describeFailure(err);
    if (this.json) this.io.stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
    else this.io.stderr.write(lines.map((l) => l + '\n').join(''));
    return exitCode;
  }
}

function describeFailure(err: unknown): { code: string; message: string; exitCode: number; lines: string[] } {
  if (err instanceof CliError) return { code: err.code, message: err.message, exitCode: err.exitCode, lines: [err.line] };
  if (err instanceof ApiError) {
    const hint = HINTS[err.status];
    return { code: err.code, message: err.message, exitCode: EXIT_FAILURE, lines: [`error: ${err.code}: ${err.message}`, ...(hint ? [`hint: ${hint}`] : [])] };
  }
  if (err instanceof NetworkError) {
    return { code: 'unreachable', message: err.message, exitCode: EXIT_FAILURE, lines: [`error: ${err.message}; is the server running? (\`npm start\` starts one)`] };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message, exitCode: EXIT_FAILURE, lines: [`error: ${message}`] };
}

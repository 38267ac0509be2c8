// `openvbs` dispatch: parse, call the API, print. `run` does no process-level I/O of its own (streams,
// environment, clock and fetch come in through `CliIO`) and returns the exit status:
//   0 success, 1 API error / failed job / timeout / unreachable server, 2 usage error, 130 interrupted wait.
import { readFileSync } from 'node:fs';
import { parseArgs, resolveConnection, usage, UsageError } from './args.ts';
import type { Command, GlobalOptions, WaitOptions } from './args.ts';
import { ApiError, NetworkError, OpenVbsClient } from './client.ts';
import type { Backup, Job, Link, Volume, VolumeCreateRequest } from './client.ts';
import { formatKeyValue, formatTable } from './render.ts';
import { formatJobSummary, ProgressDisplay, waitForJob } from './wait.ts';
import type { ProgressStream, WaitResult } from './wait.ts';

export interface OutStream {
  write(chunk: string): unknown;
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

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The marker for the next page, from `backups_links` (`rel: next`). */
export function nextMarker(links: readonly Link[] | undefined): string | undefined {
  const next = links?.find((l) => l.rel === 'next');
  if (!next) return undefined;
  try {
    return new URL(next.href, 'http://placeholder/').searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}

/** `full` / `incremental` from `is_incremental`, else from service_metadata `Type` (0 full, 1 incremental). */
export function backupType(b: Backup): string | undefined {
  if (typeof b.is_incremental === 'boolean') return b.is_incremental ? 'incremental' : 'full';
  if (typeof b.service_metadata === 'string') {
    try {
      const t = (JSON.parse(b.service_metadata) as { Type?: unknown }).Type;
      if (String(t) === '0') return 'full';
      if (String(t) === '1') return 'incremental';
    } catch {}
  }
  return undefined;
}

export function formatBackupTable(backups: readonly Backup[]): string {
  return formatTable(
    ['ID', 'NAME', 'STATUS', 'VOLUME', 'SIZE_GB', 'TYPE', 'CREATED'],
    backups.map((b) => [b.id, b.name, b.status, b.volume_id, b.size, backupType(b), b.created_at]),
  );
}

export function formatVolumeTable(volumes: readonly Volume[]): string {
  return formatTable(
    ['ID', 'NAME', 'STATUS', 'SIZE_GB', 'SIZE_BYTES', 'ENCRYPTED', 'PATH'],
    volumes.map((v) => [v.id, v.name, v.status, v.size, v.size_bytes, v.encrypted, v.path]),
  );
}

class Session {
  readonly io: CliIO;
  readonly globals: GlobalOptions;
  readonly client: OpenVbsClient;

  constructor(io: CliIO, globals: GlobalOptions) {
    this.io = io;
    this.globals = globals;
    const conn = resolveConnection(globals, io.env);
    this.client = new OpenVbsClient({ ...conn, ...(io.fetch ? { fetch: io.fetch } : {}) });
  }

  out(text: string) {
    this.io.stdout.write(text);
  }

  note(text: string) {
    this.io.stderr.write(text + '\n');
  }

  /** `--json`: the API's JSON; else the human form. */
  print(json: unknown, human: () => string) {
    this.out(this.globals.json ? JSON.stringify(json, null, 2) + '\n' : human());
  }

  /** Prints a started job, or follows it with `--wait`. */
  async started(res: { job_id: string }, wait: WaitOptions | undefined): Promise<number> {
    if (!wait) {
      this.print(res, () => formatKeyValue(res));
      if (!this.globals.json) this.note(`follow it with: openvbs job wait ${res.job_id}`);
      return EXIT_OK;
    }
    return this.follow(res.job_id, wait);
  }

  async follow(jobId: string, wait: WaitOptions): Promise<number> {
    const now = this.io.now ?? Date.now;
    const display = new ProgressDisplay(this.io.stderr, now);
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
        onPoll: (job) => display.update(job),
      });
    } catch (e) {
      display.abandon();
      throw e;
    } finally {
      this.io.onWaiting?.(false);
    }
    const job: Job = result.job;
    display.finish(formatJobSummary(job, result.elapsedMs));
    if (result.outcome === 'aborted') {
      this.note(`stopped waiting; the job goes on (openvbs job wait ${jobId})`);
      return EXIT_INTERRUPTED;
    }
    if (result.outcome === 'timeout') {
      if (this.globals.json) this.out(JSON.stringify(job, null, 2) + '\n');
      this.note(`error: timed out after ${Math.round(result.elapsedMs / 1000)} s waiting for job ${jobId} (status ${job.status}); it goes on`);
      return EXIT_FAILURE;
    }
    if (job.status === 'FAIL') {
      if (this.globals.json) this.out(JSON.stringify(job, null, 2) + '\n');
      this.note(`error: ${job.error_code || 'job failed'}: ${job.fail_reason || 'no reason given'}`);
      return EXIT_FAILURE;
    }
    this.print(job, () => formatKeyValue(job));
    return EXIT_OK;
  }

  async execute(command: Exclude<Command, { kind: 'help' | 'version' }>): Promise<number> {
    const c = this.client;
    switch (command.kind) {
      case 'token-create': {
        const res = await c.createToken(command.description);
        this.print(res, () => formatKeyValue(res.token));
        if (!this.globals.json) this.note('the token secret is shown only once: keep it (OPENVBS_TOKEN)');
        return EXIT_OK;
      }
      case 'volume-create': {
        const base = { name: command.name, ...(command.kmsKeyId !== undefined ? { kms_key_id: command.kmsKeyId } : {}) };
        const volume: VolumeCreateRequest =
          command.path !== undefined
            ? { ...base, path: command.path }
            : command.sizeBytes !== undefined
              ? { ...base, size_bytes: command.sizeBytes }
              : { ...base, size: command.size as number };
        const res = await c.createVolume(volume);
        this.print(res, () => formatKeyValue(res.volume));
        return EXIT_OK;
      }
      case 'volume-list': {
        const res = await c.listVolumes();
        this.print(res, () => formatVolumeTable(res.volumes ?? []));
        if (!this.globals.json && !res.volumes?.length) this.note('no volumes');
        return EXIT_OK;
      }
      case 'volume-show': {
        const res = await c.showVolume(command.id);
        this.print(res, () => formatKeyValue(res.volume));
        return EXIT_OK;
      }
      case 'backup-create': {
        const res = await c.createBackup({
          volume_id: command.volumeId,
          name: command.name,
          ...(command.description !== undefined ? { description: command.description } : {}),
          ...(command.full ? { extend_param: { FullBackup: 'true' as const } } : {}),
        });
        return this.started(res, command.wait);
      }
      case 'backup-list': {
        const res = await c.listBackups({
          status: command.status,
          volume_id: command.volumeId,
          name: command.name,
          limit: command.limit,
          marker: command.marker,
        });
        this.print(res, () => formatBackupTable(res.backups ?? []));
        if (!this.globals.json) {
          if (!res.backups?.length) this.note('no backups');
          const marker = nextMarker(res.backups_links);
          if (marker) this.note(`more: openvbs backup list --marker ${marker}`);
        }
        return EXIT_OK;
      }
      case 'backup-show': {
        const res = await c.showBackup(command.id);
        this.print(res, () => formatKeyValue(res.backup));
        return EXIT_OK;
      }
      case 'backup-delete':
        return this.started(await c.deleteBackup(command.id), command.wait);
      case 'backup-restore':
        return this.started(await c.restoreBackup(command.id, command.volumeId), command.wait);
      case 'job-show': {
        const job = await c.getJob(command.id);
        this.print(job, () => formatKeyValue(job));
        return EXIT_OK;
      }
      case 'job-wait':
        return this.follow(command.id, command.wait);
    }
  }
}

const HINTS: Record<number, string> = {
  401: 'check OPENVBS_TOKEN (or --token): it must be a token of project OPENVBS_PROJECT',
};

/** Runs one `openvbs` command line; never throws. */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const err = (line: string) => io.stderr.write(line + '\n');
  try {
    const { globals, command } = parseArgs(argv);
    if (command.kind === 'help') {
      io.stdout.write(usage(command.topic));
      return EXIT_OK;
    }
    if (command.kind === 'version') {
      io.stdout.write(`openvbs ${version()}\n`);
      return EXIT_OK;
    }
    return await new Session(io, globals).execute(command);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`error: ${e.message}`);
      if (e.topic) io.stderr.write('\n' + usage(e.topic));
      return EXIT_USAGE;
    }
    if (e instanceof ApiError) {
      err(`error: ${e.code}: ${e.message}`);
      const hint = HINTS[e.status];
      if (hint) err(`hint: ${hint}`);
      return EXIT_FAILURE;
    }
    if (e instanceof NetworkError) {
      err(`error: ${e.message}; is the server running? (\`npm start\` prints OPENVBS_URL)`);
      return EXIT_FAILURE;
    }
    err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_FAILURE;
  }
}

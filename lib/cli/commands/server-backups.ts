// `openvbs server-backup …`: backups of whole servers (CSBS: every disk at one instant), and restoring them.
// While waiting, each disk's job (the server job's sub_jobs) gets its own progress line.
import type { Command } from 'commander';
import { ApiError } from '../client.ts';
import type { CheckpointItem, Job, Link } from '../client.ts';
import type { CliContext, JobDisplay, JobDisplayFactory } from '../context.ts';
import { addWaitOptions, nonEmpty, positiveInt, waitOptions } from '../options.ts';
import type { WaitFlags } from '../options.ts';
import { fitLine, formatKeyValue, formatProgress, formatTable } from '../render.ts';
import { RateMeter, formatJobLine, isFinished } from '../wait.ts';
import type { ProgressStream } from '../wait.ts';
import { nextMarker } from './backups.ts';

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * The disks' jobs of a server job (sub_jobs), as far as they look like jobs; in the order of `labels` (the
 * item's disks) where it names them.
 */
export function subJobsOf(job: Job, labels: ReadonlyMap<string, string> = new Map()): Job[] {
  const subs = (job.sub_jobs ?? []).filter((s): s is Job => !!s && typeof s === 'object' && typeof (s as Job).job_id === 'string');
  const order = [...labels.keys()];
  const rank = (sub: Job) => {
    const i = order.indexOf(sub.entities?.backup_id ?? '');
    return i < 0 ? order.length : i;
  };
  return subs.map((sub, i) => ({ sub, i })).sort((a, b) => rank(a.sub) - rank(b.sub) || a.i - b.i).map(({ sub }) => sub);
}

/** One disk's line: `  /dev/vda  RUNNING  [#####-----]  50%  1.0/2.0 MB  …`. */
export function formatDiskLine(sub: Job, label: string, elapsedMs: number, rate: number): string {
  return `  ${label.padEnd(10)} ${sub.status.padEnd(7)} ${formatProgress(num(sub.bytes_done), num(sub.bytes_total), elapsedMs, { rate, percent: num(sub.progress) })}`;
}

/** How a disk's job is named on screen: its device when the item told us, else its volume. */
function diskLabel(sub: Job, labels: ReadonlyMap<string, string>): string {
  const backupId = sub.entities?.backup_id;
  return (backupId && labels.get(backupId)) || sub.entities?.volume_id || sub.job_id;
}

/**
 * The server job's line and one line per disk under it, redrawn in place on a terminal. When the job ends
 * (or the stream is not a terminal) the block is replaced by the summary and each disk's final line.
 */
export class DiskProgressDisplay implements JobDisplay {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly labels: ReadonlyMap<string, string>;
  private readonly start: number;
  private readonly meter = new RateMeter();
  private readonly diskMeters = new Map<string, RateMeter>();
  private last: Job | undefined;
  /** Lines of the live block on screen (the cursor is at the end of its last line). */
  private drawn = 0;

  constructor(stream: ProgressStream, now: () => number, labels: ReadonlyMap<string, string> = new Map()) {
    this.stream = stream;
    this.now = now;
    this.labels = labels;
    this.start = now();
  }

  private diskLines(job: Job, elapsed: number, t: number): string[] {
    return subJobsOf(job, this.labels).map((sub) => {
      let meter = this.diskMeters.get(sub.job_id);
      if (!meter) this.diskMeters.set(sub.job_id, (meter = new RateMeter()));
      return formatDiskLine(sub, diskLabel(sub, this.labels), elapsed, meter.sample(t, num(sub.bytes_done)));
    });
  }

  /** Moves to the first line of the block and clears it and everything below. */
  private clear(): string {
    if (!this.drawn) return '';
    return `\r${this.drawn > 1 ? `\x1b[${this.drawn - 1}A` : ''}\x1b[J`;
  }

  update(job: Job): void {
    const t = this.now();
    const rate = this.meter.sample(t, num(job.bytes_done));
    const disks = this.diskLines(job, t - this.start, t);
    this.last = job;
    if (!this.stream.isTTY || isFinished(job)) return;
    const lines = [formatJobLine(job, t - this.start, rate), ...disks].map((l) => fitLine(l, this.stream.columns));
    this.stream.write(this.clear() + lines.join('\n'));
    this.drawn = lines.length;
  }

  abandon(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = 0;
  }

  finish(line: string): void {
    const t = this.now();
    const disks = this.last ? subJobsOf(this.last, this.labels).map((sub) => formatDiskLine(sub, diskLabel(sub, this.labels), t - this.start, 0)) : [];
    this.stream.write(`${this.clear()}${[line, ...disks].join('\n')}\n`);
    this.drawn = 0;
  }
}

/** Disk labels (device, else volume) by disk backup id, from the item. */
function labelsOf(item: CheckpointItem | undefined): Map<string, string> {
  return new Map((item?.extend_info.volume_backups ?? []).map((v) => [v.id, v.device ?? v.source_volume_id]));
}

const display =
  (labels: Map<string, string>): JobDisplayFactory =>
  (stream, now) =>
    new DiskProgressDisplay(stream, now, labels);

export function formatServerBackupTable(items: readonly CheckpointItem[]): string {
  return formatTable(
    ['ID', 'CHECKPOINT', 'NAME', 'SERVER', 'STATUS', 'DISKS', 'SIZE_MB', 'TYPE', 'PROGRESS', 'CREATED'],
    items.map((i) => [
      i.id,
      i.checkpoint_id,
      i.name,
      i.extend_info.resource_name ?? i.resource_id,
      i.status,
      i.extend_info.volume_backups?.length,
      i.extend_info.size,
      i.extend_info.incremental === undefined ? undefined : i.extend_info.incremental ? 'incremental' : 'full',
      `${num(i.extend_info.progress)}%`,
      i.created_at,
    ]),
  );
}

/** `server-backup show`: the item's fields, then one row per disk. */
export function formatServerBackupShow(item: CheckpointItem): string {
  const { volume_backups: disks = [], ...info } = item.extend_info;
  const { extend_info: _info, backup_data: _data, ...fields } = item;
  const pick = (key: string) => info[key];
  const head = formatKeyValue({
    ...fields,
    progress: pick('progress'),
    incremental: pick('incremental'),
    size_mb: pick('size'),
    space_saving_ratio: pick('space_saving_ratio'),
    average_speed_mb_s: pick('average_speed'),
    finished_at: pick('finished_at'),
    fail_reason: pick('fail_reason'),
    crash_consistent: pick('os-openvbs:crash_consistent'),
    snapshot_method: pick('os-openvbs:snapshot_method'),
    freeze_ms: pick('os-openvbs:freeze_ms'),
    job_id: pick('os-openvbs:job_id'),
  });
  const table = formatTable(
    ['DEVICE', 'VOLUME', 'BACKUP', 'STATUS', 'SIZE_GB', 'DATA_MB', 'TYPE', 'BOOT'],
    disks.map((d) => [d.device, d.source_volume_id, d.id, d.status, d.source_volume_size, d.size, d.incremental ? 'incremental' : 'full', d.bootable ? 'yes' : 'no']),
  );
  return `${head}\n${table}`;
}

/** The item of `id`: an item id, else a checkpoint id. */
async function findItem(cli: CliContext, id: string): Promise<CheckpointItem> {
  try {
    return (await cli.client.showServerBackup(id)).checkpoint_item;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    const byCheckpoint = (await cli.client.listServerBackups({ checkpoint_id: id })).checkpoint_items[0];
    if (!byCheckpoint) throw err;
    return byCheckpoint;
  }
}

/** The item of a checkpoint, for disk labels; undefined when it cannot be read (the labels fall back to volumes). */
async function itemOfCheckpoint(cli: CliContext, checkpointId: string): Promise<CheckpointItem | undefined> {
  return (await cli.client.listServerBackups({ checkpoint_id: checkpointId }).catch(() => undefined))?.checkpoint_items[0];
}

interface CreateFlags extends WaitFlags {
  name?: string;
  description?: string;
  full?: boolean;
}

interface ListFlags {
  server?: string;
  status?: string;
  limit?: number;
  marker?: string;
}

interface RestoreFlags extends WaitFlags {
  server?: string;
  powerOn?: boolean;
}

export function registerServerBackupCommands(program: Command, cli: CliContext): void {
  const group = program.command('server-backup').description('backups of whole servers (every disk at one instant), and restoring them');

  addWaitOptions(
    group
      .command('create')
      .description('back up a server: all its disks together (incremental unless --full)')
      .argument('<server>', 'server id', nonEmpty)
      .option('--name <name>', 'backup name (not starting with "auto"; default manualbk_…)', nonEmpty)
      .option('--description <text>', 'what the backup is for')
      .option('--full', 'back up every disk in full'),
  ).action(async (server: string, flags: CreateFlags, command: Command) => {
    const wait = waitOptions(flags, command);
    const res = await cli.client.protectServer(server, {
      ...(flags.name !== undefined ? { backup_name: flags.name } : {}),
      ...(flags.description !== undefined ? { description: flags.description } : {}),
      ...(flags.full ? { incremental: false } : {}),
    });
    const jobId = res.checkpoint.extra_info.job_id;
    if (!wait) {
      cli.print(res, () => formatKeyValue({ checkpoint_id: res.checkpoint.id, item_id: res.checkpoint.extra_info.checkpoint_item_id, status: res.checkpoint.status, job_id: jobId }));
      cli.note(`follow it with: openvbs job wait ${jobId}`);
      return;
    }
    const item = await cli.client
      .showServerBackup(res.checkpoint.extra_info.checkpoint_item_id)
      .then((r) => r.checkpoint_item)
      .catch(() => undefined);
    await cli.follow(jobId, wait, display(labelsOf(item)));
  });

  group
    .command('list')
    .description('list server backups, newest first')
    .option('--server <id>', 'only backups of this server')
    .option('--status <status>', 'only backups in this status (protecting, available, error, restoring, deleting)')
    .option('--limit <n>', 'at most this many', positiveInt)
    .option('--marker <id>', 'start after this item (the next page)')
    .action(async (flags: ListFlags) => {
      const res = await cli.client.listServerBackups({ resource_id: flags.server, status: flags.status, limit: flags.limit, marker: flags.marker });
      cli.print(res, () => formatServerBackupTable(res.checkpoint_items ?? []));
      if (!res.checkpoint_items?.length) cli.note('no server backups');
      const marker = nextMarker(res.checkpoint_items_links as Link[] | undefined);
      if (marker) cli.note(`more: openvbs server-backup list --marker ${marker}`);
    });

  group
    .command('show')
    .description('show a server backup and each of its disks')
    .argument('<id>', 'checkpoint item id or checkpoint id', nonEmpty)
    .action(async (id: string) => {
      const item = await findItem(cli, id);
      cli.print({ checkpoint_item: item }, () => formatServerBackupShow(item));
    });

  addWaitOptions(group.command('delete').description('delete a server backup with its disk backups (as a job)').argument('<checkpoint-id>', 'checkpoint id', nonEmpty)).action(
    async (id: string, flags: WaitFlags, command: Command) => {
      const wait = waitOptions(flags, command);
      await cli.started(await cli.client.deleteServerBackup(id), wait);
    },
  );

  addWaitOptions(
    group
      .command('restore')
      .description('restore a server backup onto its server, or another (overwrites every disk; a local server must be stopped)')
      .argument('<checkpoint-id>', 'checkpoint id', nonEmpty)
      .option('--server <id>', 'the server to restore onto (default: the one backed up)', nonEmpty)
      .option('--power-on', 'start the server after the restore'),
  ).action(async (id: string, flags: RestoreFlags, command: Command) => {
    const wait = waitOptions(flags, command);
    const res = await cli.client.restoreServerBackup({ checkpoint_id: id, power_on: flags.powerOn === true, ...(flags.server !== undefined ? { server_id: flags.server } : {}) });
    if (!wait) {
      cli.print(res, () => formatKeyValue({ job_id: res.restore.id, checkpoint_id: id, status: res.restore.status }));
      cli.note(`follow it with: openvbs job wait ${res.restore.id}`);
      return;
    }
    await cli.follow(res.restore.id, wait, display(labelsOf(await itemOfCheckpoint(cli, id))));
  });
}

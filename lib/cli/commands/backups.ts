// `openvbs backup …`: backups of volumes, and restoring them.
import type { Command } from 'commander';
import type { Backup, Link } from '../client.ts';
import type { CliContext } from '../context.ts';
import { addWaitOptions, nonEmpty, positiveInt, waitOptions } from '../options.ts';
import type { WaitFlags } from '../options.ts';
import { formatBytes, formatBytesExact, formatKeyValue, formatTable } from '../render.ts';
import { addSharingCommands } from './sharing.ts';

/** The OpenVBS extension attribute on a backup: what it cost (docs/service-contract.md). */
export const BACKUP_STATS_ATTR = 'os-openvbs-bak-stats-attr:stats';

/** The figures of BACKUP_STATS_ATTR; null until the backup is committed. */
export interface BackupCost {
  stored_bytes: number | null;
  new_chunks: number | null;
  reused_blocks: number | null;
  dedup_blocks: number | null;
  zero_blocks: number | null;
  blocks: number | null;
  logical_bytes: number | null;
  packs_written: number | null;
  parent_backup_id: string | null;
}

/** The backup's cost, or undefined from a server that does not show it. */
export function backupCost(b: Backup): Partial<BackupCost> | undefined {
  const cost = b[BACKUP_STATS_ATTR];
  return cost && typeof cost === 'object' && !Array.isArray(cost) ? (cost as Partial<BackupCost>) : undefined;
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

function storedBytes(b: Backup): number | undefined {
  const stored = backupCost(b)?.stored_bytes;
  return typeof stored === 'number' ? stored : undefined;
}

export function formatBackupTable(backups: readonly Backup[]): string {
  return formatTable(
    ['ID', 'NAME', 'STATUS', 'VOLUME', 'SIZE_GB', 'STORED', 'TYPE', 'CREATED'],
    backups.map((b) => {
      const stored = storedBytes(b);
      return [b.id, b.name, b.status, b.volume_id, b.size, stored === undefined ? undefined : formatBytes(stored), backupType(b), b.created_at];
    }),
  );
}

/** `backup show`: the backup's fields, its cost last and readable in place of the extension object. */
export function formatBackupShow(b: Backup): string {
  const fields = Object.fromEntries(Object.entries(b).filter(([key]) => key !== BACKUP_STATS_ATTR));
  const cost = backupCost(b);
  const stored = storedBytes(b);
  return formatKeyValue({
    ...fields,
    stored_bytes: stored === undefined ? undefined : formatBytesExact(stored),
    new_chunks: cost?.new_chunks,
    reused_blocks: cost?.reused_blocks,
    dedup_blocks: cost?.dedup_blocks,
    zero_blocks: cost?.zero_blocks,
    parent_backup_id: cost?.parent_backup_id,
  });
}

interface BackupCreateFlags extends WaitFlags {
  volume: string;
  name: string;
  description?: string;
  full?: boolean;
}

interface BackupListFlags {
  status?: string;
  volume?: string;
  name?: string;
  limit?: number;
  marker?: string;
}

export function registerBackupCommands(program: Command, cli: CliContext): void {
  const backup = program.command('backup').description('backups of volumes, and restoring them');

  addWaitOptions(
    backup
      .command('create')
      .description('back up a volume (incremental unless --full)')
      .requiredOption('--volume <id>', 'the volume to back up', nonEmpty)
      .requiredOption('--name <name>', 'backup name (not starting with "auto")', nonEmpty)
      .option('--description <text>', 'what the backup is for')
      .option('--full', 'force a full backup'),
  ).action(async (flags: BackupCreateFlags, command: Command) => {
    const wait = waitOptions(flags, command);
    const res = await cli.client.createBackup({
      volume_id: flags.volume,
      name: flags.name,
      ...(flags.description !== undefined ? { description: flags.description } : {}),
      ...(flags.full ? { extend_param: { FullBackup: 'true' as const } } : {}),
    });
    await cli.started(res, wait);
  });

  backup
    .command('list')
    .description('list backups with details')
    .option('--status <status>', 'only backups in this status (e.g. available, error)')
    .option('--volume <id>', 'only backups of this volume')
    .option('--name <name>', 'only backups of this name')
    .option('--limit <n>', 'at most this many backups', positiveInt)
    .option('--marker <id>', 'start after this backup (the next page)')
    .action(async (flags: BackupListFlags) => {
      const res = await cli.client.listBackups({ status: flags.status, volume_id: flags.volume, name: flags.name, limit: flags.limit, marker: flags.marker });
      cli.print(res, () => formatBackupTable(res.backups ?? []));
      if (!res.backups?.length) cli.note('no backups');
      const marker = nextMarker(res.backups_links);
      if (marker) cli.note(`more: openvbs backup list --marker ${marker}`);
    });

  backup
    .command('show')
    .description('show one backup')
    .argument('<id>', 'backup id', nonEmpty)
    .action(async (id: string) => {
      const res = await cli.client.showBackup(id);
      cli.print(res, () => formatBackupShow(res.backup));
    });

  addWaitOptions(backup.command('delete').description('delete a backup (as a job)').argument('<id>', 'backup id', nonEmpty)).action(
    async (id: string, flags: WaitFlags, command: Command) => {
      const wait = waitOptions(flags, command);
      await cli.started(await cli.client.deleteBackup(id), wait);
    },
  );

  addWaitOptions(
    backup
      .command('restore')
      .description('restore a backup onto a volume (overwrites the target)')
      .argument('<id>', 'backup id', nonEmpty)
      .requiredOption('--volume <id>', 'the target volume', nonEmpty),
  ).action(async (id: string, flags: WaitFlags & { volume: string }, command: Command) => {
    const wait = waitOptions(flags, command);
    await cli.started(await cli.client.restoreBackup(id, flags.volume), wait);
  });

  addSharingCommands(backup, cli);
}

// `openvbs backup share|shares|unshare`: sharing the project's backups with other projects (VBS
// os-vendor-backup-sharing), and `openvbs volume create --from-backup`: a new volume restored from a backup of
// the project or one shared with it.
import type { Command } from 'commander';
import type { Backup, Volume } from '../client.ts';
import type { CliContext, WaitOptions } from '../context.ts';
import { nonEmpty, positiveInt } from '../options.ts';
import { formatKeyValue, formatTable } from '../render.ts';
import { nextMarker } from './backups.ts';

/** A share as the API shows it; the list and show carry the shared backup too. */
export interface ShareInfo {
  id: string;
  backup_id: string;
  from_project_id: string;
  to_project_id: string;
  created_at: string;
  updated_at: string;
  backup?: Backup;
  [key: string]: unknown;
}

const sharingPath = (cli: CliContext, rest = '') => `/v2/${encodeURIComponent(cli.client.project)}/os-vendor-backup-sharing${rest}`;

export function formatShareTable(shares: readonly ShareInfo[]): string {
  return formatTable(
    ['ID', 'BACKUP', 'NAME', 'STATUS', 'FROM_PROJECT', 'TO_PROJECT', 'CREATED'],
    shares.map((s) => [s.id, s.backup_id, s.backup?.name, s.backup?.status, s.from_project_id, s.to_project_id, s.created_at]),
  );
}

interface SharesFlags {
  toMe?: boolean;
  backup?: string;
  limit?: number;
  marker?: string;
}

/** Adds share, shares and unshare to the `backup` command. */
export function addSharingCommands(backup: Command, cli: CliContext): void {
  backup
    .command('share')
    .description('share an available backup with other projects: they see it and can create volumes from it')
    .argument('<id>', 'backup id', nonEmpty)
    .requiredOption('--to-project <ids...>', 'the projects to share it with (one or more)')
    .action(async (id: string, flags: { toProject: string[] }) => {
      const res = await cli.client.request<{ shared: ShareInfo[] }>('POST', sharingPath(cli), { shared: { backup_id: id, to_project_ids: flags.toProject } });
      cli.print(res, () => formatShareTable(res.shared ?? []));
    });

  backup
    .command('shares')
    .description('list the shares of the project’s backups (or, with --to-me, the backups shared with it)')
    .option('--to-me', 'the backups other projects shared with this one')
    .option('--backup <id>', 'only the shares of this backup')
    .option('--limit <n>', 'at most this many shares', positiveInt)
    .option('--marker <id>', 'start after this share (the next page)')
    .action(async (flags: SharesFlags) => {
      const params = new URLSearchParams();
      if (flags.toMe) params.set('share_to_me', 'true');
      if (flags.backup !== undefined) params.set('backup_id', flags.backup);
      if (flags.limit !== undefined) params.set('limit', String(flags.limit));
      if (flags.marker !== undefined) params.set('marker', flags.marker);
      const qs = params.size ? `?${params}` : '';
      const res = await cli.client.request<{ shared: ShareInfo[]; shared_links?: Array<{ rel: string; href: string }> }>('GET', sharingPath(cli, `/detail${qs}`));
      cli.print(res, () => formatShareTable(res.shared ?? []));
      if (!res.shared?.length) cli.note('no shares');
      const marker = nextMarker(res.shared_links);
      if (marker) cli.note(`more: openvbs backup shares${flags.toMe ? ' --to-me' : ''} --marker ${marker}`);
    });

  backup
    .command('unshare')
    .description('remove a share (or, with --all, every share of a backup): the other project no longer sees the backup')
    .argument('<id>', 'share id (from backup shares), or with --all a backup id', nonEmpty)
    .option('--all', 'the id is a backup’s: remove all its shares')
    .action(async (id: string, flags: { all?: boolean }) => {
      await cli.client.request<undefined>('DELETE', sharingPath(cli, `/${encodeURIComponent(id)}${flags.all ? '?is_backup_id=true' : ''}`));
      if (!cli.json) cli.io.stdout.write(flags.all ? `every share of backup ${id} removed\n` : `share ${id} removed\n`);
    });
}

/** `volume create --from-backup`: the new volume (restoring) and its restore job, followed with `--wait`. */
export async function createVolumeFromBackup(cli: CliContext, volume: Record<string, unknown>, wait: WaitOptions | undefined): Promise<void> {
  const res = await cli.client.request<{ volume: Volume; job_id: string }>('POST', `/v2/${encodeURIComponent(cli.client.project)}/volumes`, { volume });
  if (!wait) {
    cli.print(res, () => formatKeyValue({ ...res.volume, job_id: res.job_id }));
    cli.note(`the volume is restoring; follow it with: openvbs job wait ${res.job_id}`);
    return;
  }
  if (!cli.json) cli.io.stdout.write(formatKeyValue({ ...res.volume, job_id: res.job_id }));
  await cli.follow(res.job_id, wait);
}

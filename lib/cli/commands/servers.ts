// `openvbs server …`: servers of the local inventory (groups of volumes with a power status) and the freeze
// and thaw hooks that make a running server's backup crash-consistent. The API: /v1/{project}/servers.
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { nonEmpty, positiveInt } from '../options.ts';
import { formatKeyValue, formatTable } from '../render.ts';

export interface ServerDisk {
  volume_id: string;
  device: string;
  bootable: boolean;
}

export interface Server {
  id: string;
  name: string;
  status: 'running' | 'stopped';
  disks: ServerDisk[];
  hooks: { freeze: string[]; thaw: string[]; timeout_seconds: number | null } | null;
  created_at: string;
  updated_at: string;
  [key: string]: unknown;
}

const path = (cli: CliContext, rest = '') => `/v1/${encodeURIComponent(cli.client.project)}/servers${rest}`;
const one = (id: string) => `/${encodeURIComponent(id)}`;

export function formatServerTable(servers: readonly Server[]): string {
  return formatTable(
    ['ID', 'NAME', 'STATUS', 'DISKS', 'HOOKS'],
    servers.map((s) => [s.id, s.name, s.status, s.disks.map((d) => `${d.device}=${d.volume_id}`).join(' '), s.hooks ? 'yes' : 'no']),
  );
}

/** One server: its fields, then its disks as a table. */
export function formatServer(s: Server): string {
  const { disks, hooks, ...fields } = s;
  const head = formatKeyValue({
    ...fields,
    freeze_hook: hooks ? JSON.stringify(hooks.freeze) : null,
    thaw_hook: hooks ? JSON.stringify(hooks.thaw) : null,
    ...(hooks?.timeout_seconds ? { hook_timeout_seconds: hooks.timeout_seconds } : {}),
  });
  if (!disks.length) return `${head}disks:  -\n`;
  return `${head}\n${formatTable(['DEVICE', 'VOLUME', 'BOOTABLE'], disks.map((d) => [d.device, d.volume_id, d.bootable]))}`;
}

/** `--disk VOLUME[:DEVICE]` (repeatable). */
function diskArg(value: string, previous: Array<{ volume_id: string; device?: string }> = []) {
  const [volumeId, device, extra] = value.split(':');
  if (!volumeId || extra !== undefined || device === '') throw new InvalidArgumentError('must be VOLUME_ID or VOLUME_ID:/dev/vdX');
  return [...previous, { volume_id: volumeId, ...(device !== undefined ? { device } : {}) }];
}

/** A command as a JSON array of strings, the program first: '["/usr/bin/virsh","domfsfreeze","web"]'. */
export function argvArg(value: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.length || !parsed.every((a) => typeof a === 'string')) {
    throw new InvalidArgumentError('must be a JSON array of strings, the program first, e.g. \'["/usr/sbin/fsfreeze","--freeze","/srv"]\'');
  }
  return parsed as string[];
}

export function registerServerCommands(program: Command, cli: CliContext): void {
  const server = program.command('server').description('servers of the local inventory: volumes grouped as disks, backed up together');

  const show = (res: { server: Server }) => cli.print(res, () => formatServer(res.server));

  server
    .command('create')
    .description('create a server, optionally with disks (each volume must be available)')
    .requiredOption('--name <name>', 'server name', nonEmpty)
    .option('--disk <volume[:device]>', 'attach this volume (repeat for more; device default: the first free /dev/vdX)', diskArg)
    .option('--stopped', 'the server is stopped (nothing writes its disks): its backups are consistent without hooks')
    .action(async (flags: { name: string; disk?: Array<{ volume_id: string; device?: string }>; stopped?: boolean }) => {
      const body = { server: { name: flags.name, ...(flags.stopped ? { status: 'stopped' } : {}), ...(flags.disk ? { disks: flags.disk } : {}) } };
      show(await cli.client.request<{ server: Server }>('POST', path(cli), body));
    });

  server
    .command('list')
    .description('list the servers')
    .action(async () => {
      const res = await cli.client.request<{ servers: Server[] }>('GET', path(cli));
      cli.print(res, () => formatServerTable(res.servers ?? []));
      if (!res.servers?.length) cli.note('no servers');
    });

  server
    .command('show')
    .description('show one server with its disks and hooks')
    .argument('<id>', 'server id', nonEmpty)
    .action(async (id: string) => show(await cli.client.request<{ server: Server }>('GET', path(cli, one(id)))));

  for (const [name, action, description] of [
    ['start', 'os-start', 'mark the server running (its backups then need hooks, or a single cloned disk, to be crash-consistent)'],
    ['stop', 'os-stop', 'mark the server stopped (say so only when nothing writes its disks)'],
  ] as const) {
    server
      .command(name)
      .description(description)
      .argument('<id>', 'server id', nonEmpty)
      .action(async (id: string) => show(await cli.client.request<{ server: Server }>('POST', path(cli, `${one(id)}/action`), { [action]: {} })));
  }

  server
    .command('delete')
    .description('delete a server: its disks are detached, the volumes stay')
    .argument('<id>', 'server id', nonEmpty)
    .action(async (id: string) => {
      await cli.client.request<undefined>('DELETE', path(cli, one(id)));
      if (!cli.json) cli.io.stdout.write(`server ${id} deleted\n`);
    });

  server
    .command('attach')
    .description('attach a volume to the server as a disk')
    .argument('<id>', 'server id', nonEmpty)
    .argument('<volume>', 'volume id', nonEmpty)
    .option('--device <device>', 'e.g. /dev/vdb (default: the first free /dev/vdX)', nonEmpty)
    .option('--bootable', 'the disk the server boots from (default: only a first disk)')
    .action(async (id: string, volume: string, flags: { device?: string; bootable?: boolean }) => {
      const disk = { volume_id: volume, ...(flags.device !== undefined ? { device: flags.device } : {}), ...(flags.bootable ? { bootable: true } : {}) };
      show(await cli.client.request<{ server: Server }>('POST', path(cli, `${one(id)}/disks`), { disk }));
    });

  server
    .command('detach')
    .description('detach a disk from the server (the volume becomes available)')
    .argument('<id>', 'server id', nonEmpty)
    .argument('<volume>', 'volume id', nonEmpty)
    .action(async (id: string, volume: string) => {
      await cli.client.request<undefined>('DELETE', path(cli, `${one(id)}/disks/${encodeURIComponent(volume)}`));
      if (!cli.json) cli.io.stdout.write(`volume ${volume} detached from server ${id}\n`);
    });

  server
    .command('hooks')
    .description('set (--freeze and --thaw) or remove (--clear) the commands run around the capture of a running server')
    .argument('<id>', 'server id', nonEmpty)
    .option('--freeze <json>', 'holds the server\'s writers, e.g. \'["/usr/bin/virsh","domfsfreeze","web"]\' (run without a shell)', argvArg)
    .option('--thaw <json>', 'lets them go again, e.g. \'["/usr/bin/virsh","domfsthaw","web"]\'', argvArg)
    .option('--timeout <seconds>', 'how long either hook may run before it is killed (default 60)', positiveInt)
    .option('--clear', 'remove both hooks')
    .action(async (id: string, flags: { freeze?: string[]; thaw?: string[]; timeout?: number; clear?: boolean }, command: Command) => {
      if (flags.clear) {
        if (flags.freeze || flags.thaw || flags.timeout) command.error('--clear takes no other option');
        await cli.client.request<undefined>('DELETE', path(cli, `${one(id)}/hooks`));
        if (!cli.json) cli.io.stdout.write(`hooks of server ${id} removed\n`);
        return;
      }
      if (!flags.freeze || !flags.thaw) command.error('give both --freeze and --thaw (or --clear)');
      const hooks = { freeze: flags.freeze, thaw: flags.thaw, ...(flags.timeout !== undefined ? { timeout_seconds: flags.timeout } : {}) };
      show(await cli.client.request<{ server: Server }>('PUT', path(cli, `${one(id)}/hooks`), { hooks }));
    });
}

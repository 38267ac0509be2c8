// `openvbs volume …`: the volume inventory.
import { Option } from 'commander';
import type { Command } from 'commander';
import type { Volume, VolumeCreateRequest } from '../client.ts';
import type { CliContext } from '../context.ts';
import { addWaitOptions, nonEmpty, positiveInt, waitOptions } from '../options.ts';
import type { WaitFlags } from '../options.ts';
import { formatKeyValue, formatTable } from '../render.ts';
import { createVolumeFromBackup } from './sharing.ts';

export function formatVolumeTable(volumes: readonly Volume[]): string {
  return formatTable(
    ['ID', 'NAME', 'STATUS', 'SIZE_GB', 'SIZE_BYTES', 'ENCRYPTED', 'PATH'],
    volumes.map((v) => [v.id, v.name, v.status, v.size, v.size_bytes, v.encrypted, v.path]),
  );
}

interface VolumeCreateFlags extends WaitFlags {
  name: string;
  fromBackup?: string;
  size?: number;
  sizeBytes?: number;
  path?: string;
  kmsKeyId?: string;
}

function volumeCreateRequest(flags: VolumeCreateFlags, command: Command): VolumeCreateRequest {
  const base = { name: flags.name, ...(flags.kmsKeyId !== undefined ? { kms_key_id: flags.kmsKeyId } : {}) };
  if (flags.path !== undefined) return { ...base, path: flags.path };
  if (flags.sizeBytes !== undefined) return { ...base, size_bytes: flags.sizeBytes };
  if (flags.size !== undefined) return { ...base, size: flags.size };
  return command.error('missing --size, --size-bytes or --path');
}

export function registerVolumeCommands(program: Command, cli: CliContext): void {
  const volume = program.command('volume').description('volumes: disk images and block devices to back up');

  addWaitOptions(
    volume
      .command('create')
      .description('create a sparse volume image (empty, or restored from a backup), or register an existing image or block device')
      .requiredOption('--name <name>', 'volume name', nonEmpty)
      .addOption(new Option('--size <GB>', 'new image of this many GB (GiB)').argParser(positiveInt).conflicts(['sizeBytes', 'path']))
      .addOption(new Option('--size-bytes <bytes>', 'new image of exactly this many bytes').argParser(positiveInt).conflicts('path'))
      .addOption(new Option('--path <path>', 'register an existing image file or block device').argParser(nonEmpty))
      .addOption(new Option('--from-backup <id>', 'restore this backup (the project’s or one shared with it) into the new image; size: at least the backup’s, by default the same').argParser(nonEmpty).conflicts('path'))
      .option('--kms-key-id <key>', 'back the volume up under this customer key: its id, ARN or alias (see `openvbs key list`)', nonEmpty),
  ).action(async (flags: VolumeCreateFlags, command: Command) => {
    const wait = waitOptions(flags, command);
    if (flags.fromBackup !== undefined) {
      const size = flags.sizeBytes !== undefined ? { size_bytes: flags.sizeBytes } : flags.size !== undefined ? { size: flags.size } : {};
      const kms = flags.kmsKeyId !== undefined ? { kms_key_id: flags.kmsKeyId } : {};
      return createVolumeFromBackup(cli, { name: flags.name, backup_id: flags.fromBackup, ...size, ...kms }, wait);
    }
    if (wait) command.error('--wait needs --from-backup (only a volume from a backup has a job)');
    const request = volumeCreateRequest(flags, command);
    const res = await cli.client.createVolume(request);
    cli.print(res, () => formatKeyValue(res.volume));
  });

  volume
    .command('list')
    .description('list the volumes')
    .action(async () => {
      const res = await cli.client.listVolumes();
      cli.print(res, () => formatVolumeTable(res.volumes ?? []));
      if (!res.volumes?.length) cli.note('no volumes');
    });

  volume
    .command('show')
    .description('show one volume')
    .argument('<id>', 'volume id', nonEmpty)
    .action(async (id: string) => {
      const res = await cli.client.showVolume(id);
      cli.print(res, () => formatKeyValue(res.volume));
    });

  volume
    .command('delete')
    .description('delete a volume (refused while a job uses it): a managed image is removed, a registered path is left')
    .argument('<id>', 'volume id', nonEmpty)
    .action(async (id: string) => {
      await cli.client.deleteVolume(id);
      // The API answers 204 without a body: with --json there is nothing to print.
      if (!cli.json) cli.io.stdout.write(`volume ${id} deleted\n`);
    });
}

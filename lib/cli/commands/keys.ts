// `openvbs key …`: the project's customer keys, which a volume names with `--kms-key-id`.
import type { Command } from 'commander';
import type { Key } from '../client.ts';
import type { CliContext } from '../context.ts';
import { nonEmpty } from '../options.ts';
import { formatKeyValue, formatTable } from '../render.ts';

export function formatKeyTable(keys: readonly Key[]): string {
  return formatTable(
    ['ID', 'ALIAS', 'ENABLED', 'CREATED', 'ARN', 'DESCRIPTION'],
    keys.map((k) => [k.id, k.alias, k.enabled, k.created_at, k.arn, k.description]),
  );
}

export function registerKeyCommands(program: Command, cli: CliContext): void {
  const key = program.command('key').description('customer keys that volumes are backed up under');

  key
    .command('create')
    .description('create a customer key')
    .option('--alias <alias>', 'a name for the key: alias/ and letters, digits, /, _ or -', nonEmpty)
    .option('--description <text>', 'what the key is for')
    .action(async (flags: { alias?: string; description?: string }) => {
      const res = await cli.client.createKey({
        ...(flags.alias !== undefined ? { alias: flags.alias } : {}),
        ...(flags.description !== undefined ? { description: flags.description } : {}),
      });
      cli.print(res, () => formatKeyValue(res.key));
    });

  key
    .command('list')
    .description('list the customer keys')
    .action(async () => {
      const res = await cli.client.listKeys();
      cli.print(res, () => formatKeyTable(res.keys ?? []));
      if (!res.keys?.length) cli.note('no keys');
    });
}

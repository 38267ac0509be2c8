// `openvbs token …`: API tokens of the project.
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { formatKeyValue } from '../render.ts';

export function registerTokenCommands(program: Command, cli: CliContext): void {
  const token = program.command('token').description('API tokens of the project');

  token
    .command('create')
    .description('create another API token for the project (the secret is shown once)')
    .option('--description <text>', 'what the token is for')
    .action(async (flags: { description?: string }) => {
      const res = await cli.client.createToken(flags.description);
      cli.print(res, () => formatKeyValue(res.token));
      cli.note('the token secret is shown only once: keep it (OPENVBS_TOKEN)');
    });
}

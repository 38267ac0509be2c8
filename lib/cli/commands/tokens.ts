// `openvbs token …`: API tokens of the project (an admin token is needed for all of them).
import { Option } from 'commander';
import type { Command } from 'commander';
import type { TokenCreateRequest, TokenInfo } from '../client.ts';
import type { CliContext } from '../context.ts';
import { nonEmpty, positiveInt } from '../options.ts';
import { formatKeyValue, formatTable } from '../render.ts';

export function formatTokenTable(tokens: readonly TokenInfo[]): string {
  return formatTable(
    ['ID', 'SCOPE', 'CREATED', 'EXPIRES', 'DESCRIPTION'],
    tokens.map((t) => [t.id, t.scope, t.created_at, t.expires_at, t.description]),
  );
}

export function registerTokenCommands(program: Command, cli: CliContext): void {
  const token = program.command('token').description('API tokens of the project (admin tokens only)');

  token
    .command('create')
    .description('create another API token for the project (the secret is shown once)')
    .option('--description <text>', 'what the token is for')
    .addOption(new Option('--scope <scope>', 'admin: also volumes, keys and tokens; user: backups, restores and jobs (default user)').choices(['admin', 'user']))
    .option('--expires-in <seconds>', 'the token stops working after this many seconds', positiveInt)
    .action(async (flags: { description?: string; scope?: TokenCreateRequest['scope']; expiresIn?: number }) => {
      const res = await cli.client.createToken({
        ...(flags.description !== undefined ? { description: flags.description } : {}),
        ...(flags.scope !== undefined ? { scope: flags.scope } : {}),
        ...(flags.expiresIn !== undefined ? { expires_in: flags.expiresIn } : {}),
      });
      cli.print(res, () => formatKeyValue(res.token));
      cli.note('the token secret is shown only once: keep it (OPENVBS_TOKEN)');
    });

  token
    .command('list')
    .description('list the project’s tokens (never their secrets)')
    .action(async () => {
      const res = await cli.client.listTokens();
      cli.print(res, () => formatTokenTable(res.tokens ?? []));
      if (!res.tokens?.length) cli.note('no tokens');
    });

  token
    .command('revoke')
    .description('revoke a token: it is refused from now on (behind API Gateway within a minute)')
    .argument('<id>', 'token id (from token list)', nonEmpty)
    .action(async (id: string) => {
      await cli.client.revokeToken(id);
      // The API answers 204 without a body: with --json there is nothing to print.
      if (!cli.json) cli.io.stdout.write(`token ${id} revoked\n`);
    });
}

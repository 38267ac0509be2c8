// `openvbs job …`: the jobs that backups, restores and deletions run as.
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { nonEmpty, timeoutOption } from '../options.ts';
import { formatKeyValue } from '../render.ts';

export function registerJobCommands(program: Command, cli: CliContext): void {
  const job = program.command('job').description('jobs: backups, restores and deletions in progress or done');

  job
    .command('show')
    .description('show a job')
    .argument('<id>', 'job id', nonEmpty)
    .action(async (id: string) => {
      const res = await cli.client.getJob(id);
      cli.print(res, () => formatKeyValue(res));
    });

  job
    .command('cancel')
    .description('cancel a running backup, restore or deletion: it ends FAIL with fail_reason "cancelled"')
    .argument('<id>', 'job id', nonEmpty)
    .action(async (id: string) => {
      const res = await cli.client.cancelJob(id);
      cli.print(res, () => formatKeyValue(res));
    });

  job
    .command('wait')
    .description('follow a job until it ends (exit 0 on SUCCESS, 1 on FAIL or timeout)')
    .argument('<id>', 'job id', nonEmpty)
    .addOption(timeoutOption())
    .action(async (id: string, flags: { timeout?: number }) => {
      await cli.follow(id, flags.timeout === undefined ? {} : { timeoutMs: flags.timeout });
    });
}

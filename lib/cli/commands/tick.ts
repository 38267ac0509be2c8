// `openvbs tick [--at TIME]`: one pass of the backup-policy scheduler over the project's policies, now or at
// TIME (a time in the future runs its due slots early, and they do not run again at their time). Needs an admin
// token. `npm start` also ticks by itself every OPENVBS_TICK_SECONDS.
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { formatTable } from '../render.ts';

interface TickResult {
  at: string;
  runs: Array<{ backup_policy_id: string; scheduled_at: string; late: boolean; tasks: number }>;
  missed: Array<{ backup_policy_id: string; scheduled_at: string }>;
  settled: number;
}

function parseAt(value: string): string {
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw new UsageError(`--at: "${value}" is not a time (ISO 8601, e.g. 2025-03-03T02:00:00Z)`, 'openvbs tick');
  return at.toISOString();
}

export function registerTickCommands(program: Command, cli: CliContext): void {
  program
    .command('tick')
    .description('run the backup-policy scheduler once for this project: due slots start their runs, ended runs are settled and pruned')
    .option('--at <time>', 'the time the pass runs at (ISO 8601); default now', parseAt)
    .action(async (flags: { at?: string }) => {
      const res = await cli.client.request<TickResult>('POST', `/v1/${encodeURIComponent(cli.client.project)}/policy-tick`, flags.at ? { at: flags.at } : {});
      cli.print(res, () => {
        const lines = [`tick at ${res.at}: ${res.runs.length} run(s) started, ${res.missed.length} slot(s) missed, ${res.settled} task(s) settled`];
        if (res.runs.length) lines.push(formatTable(['POLICY', 'SLOT', 'LATE', 'TASKS'], res.runs.map((r) => [r.backup_policy_id, r.scheduled_at, r.late ? 'yes' : 'no', r.tasks])));
        return lines.join('\n');
      });
    });
}

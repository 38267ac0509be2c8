// `openvbs gc`: one garbage collection run (lib/engine/gc.ts) over the storage the environment names, as
// `openvbs check` does: the embedded home (OPENVBS_HOME), which a running local service may be using at the
// same time (the collector is safe beside running backups and restores: docs/format.md), or with
// OPENVBS_BACKEND=aws the bucket and tables in OPENVBS_BUCKET, OPENVBS_CATALOG_TABLE, OPENVBS_CHUNK_TABLE.
// On AWS the gc-run function runs the same collection on a schedule.
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import type { GcReport } from '../../engine/gc.ts';
import type { CliContext } from '../context.ts';
import { formatBytes } from '../render.ts';
import { checkConfig } from './check.ts';

function hours(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a positive number of hours');
  return n;
}

export function formatGcReport(r: GcReport): string {
  if (!r.ran) return 'another garbage collection is running; nothing done\n';
  return (
    [
      `scanned ${r.domains} key domain(s): ${r.rootBackups} backup(s) as roots, ${r.manifestsRead} manifests, ${r.liveChunks} live chunks, ${r.indexEntries} index entries`,
      `index entries: ${r.entriesMarked} marked, ${r.entriesUnmarked} unmarked, ${r.indexEntriesDeleted} deleted`,
      `packs: ${r.packsDeleted} deleted, ${r.packsNoted} newly unnamed (deleted a margin from now if still unnamed), ${r.packsRepacked} repacked into ${r.packsWritten} new`,
      `deleted backups: ${r.backupsDrained} drained, ${r.manifestsDeleted} manifests deleted`,
      `freed ${formatBytes(r.bytesFreed)}, wrote ${formatBytes(r.bytesWritten)} (repacking)`,
      `mark ${(r.markMs / 1000).toFixed(1)} s, sweep ${(r.sweepMs / 1000).toFixed(1)} s, repack ${(r.repackMs / 1000).toFixed(1)} s`,
    ].join('\n') + '\n'
  );
}

export function registerGcCommands(program: Command, cli: CliContext): void {
  program
    .command('gc')
    .description('collect garbage: index entries, packs and manifests no backup references (reads and deletes in the storage directly, not the API)')
    .option('--margin-hours <hours>', 'how long something must stay unreferenced before it is deleted (default 24)', hours)
    .addHelpText(
      'after',
      `
A run marks what no backup references, deletes what an earlier run marked at least the margin ago and is still
unreferenced, and repacks packs that fell mostly empty; so what a deletion frees goes over two or three runs.
Reads the backend the environment names: $OPENVBS_HOME (embedded, the default) or, with OPENVBS_BACKEND=aws,
OPENVBS_BUCKET, OPENVBS_CATALOG_TABLE, OPENVBS_CHUNK_TABLE and OPENVBS_SERVICE_KEY_ID.`,
    )
    .action(async (flags: { marginHours?: number }) => {
      const config = await checkConfig(cli.io.env);
      const [{ openRuntime }, { gcRunStep, gcOptionsFromEnv }] = await Promise.all([import('../../wiring/runtime.ts'), import('../../workflows/steps/gc.ts')]);
      const runtime = await openRuntime(config, { workers: 0 });
      let report: GcReport;
      try {
        const tasks = runtime.taskDeps();
        const options = gcOptionsFromEnv(cli.io.env as NodeJS.ProcessEnv);
        report = await gcRunStep(
          { engine: tasks.engine, backups: tasks.backups, gcQueue: tasks.gcQueue, ...(tasks.notifier ? { notifier: tasks.notifier } : {}) },
          flags.marginHours !== undefined ? { ...options, marginMs: flags.marginHours * 3600_000 } : options,
        );
      } finally {
        await runtime.close();
      }
      cli.print(report, () => formatGcReport(report));
    });
}

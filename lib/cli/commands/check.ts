// `openvbs check`: verifies the stored backups (lib/engine/check.ts). Unlike the other commands it does not go
// through the API: it reads the storage itself, as an operator's tool, with the storage's own access (the
// API's functions hold no right to read packs, and a check outlasts an API request). It opens the backend the
// environment names: the embedded home (OPENVBS_HOME, default .openvbs/ in the repository), which a running
// local service may be using at the same time (the check only reads), or with OPENVBS_BACKEND=aws the bucket
// and tables in OPENVBS_BUCKET, OPENVBS_CATALOG_TABLE, OPENVBS_CHUNK_TABLE and OPENVBS_SERVICE_KEY_ID.
// On AWS the check-run function runs the same check on a schedule.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import type { CheckDamage, CheckProgress, CheckReport } from '../../engine/check.ts';
import type { ServiceConfig } from '../../config.ts';
import { embeddedPaths } from '../../wiring/backend.ts';
import { DEFAULT_HOME } from '../connection.ts';
import type { CliContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { nonEmpty } from '../options.ts';
import { formatBytes, formatRate } from '../render.ts';

/** Exit status when the check ran and found damage (1 is kept for a check that could not run). */
export const EXIT_DAMAGE = 3;

/** `25`, `25%` or `2.5%`: a percentage in (0, 100]. */
export function percentage(value: string): number {
  const n = Number(value.trim().replace(/%$/, ''));
  if (!/^\s*\d+(\.\d+)?%?\s*$/.test(value) || !(n > 0 && n <= 100)) {
    throw new InvalidArgumentError('must be a percentage above 0 and at most 100, e.g. 10%');
  }
  return n;
}

/** The backend the check reads, from the environment. */
export async function checkConfig(env: Readonly<Record<string, string | undefined>>): Promise<ServiceConfig> {
  const backend = env.OPENVBS_BACKEND || 'embedded';
  if (backend === 'embedded') {
    const home = resolve(env.OPENVBS_HOME || DEFAULT_HOME);
    // Opening a backend creates what is missing: a check must not create an empty home and pass.
    if (!existsSync(embeddedPaths(home).catalog)) throw new CliError('not_configured', `no OpenVBS home at ${home} (set OPENVBS_HOME, or OPENVBS_BACKEND=aws)`, { exitCode: 2 });
    return { backend: 'embedded', home };
  }
  const { loadServiceConfig } = await import('../../config.ts');
  try {
    return loadServiceConfig({ ...env, OPENVBS_BACKEND: backend });
  } catch (err) {
    throw new CliError('not_configured', (err as Error).message, { exitCode: 2 });
  }
}

const runs = (blocks: Array<[number, number]> | undefined) => (blocks ?? []).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');

function damageLine(d: CheckDamage): string {
  const where = d.backupId
    ? `backup ${d.backupId} (volume ${d.volumeId}, project ${d.projectId})${d.segment !== undefined ? ` segment ${d.segment}` : ''}${d.blocks?.length ? ` blocks ${runs(d.blocks)}` : ''}`
    : `project ${d.projectId}`;
  const chunks = d.chunkIds?.length ? ` chunk${d.chunkIds.length > 1 ? 's' : ''} ${d.chunkIds.slice(0, 3).join(', ')}${d.chunkIds.length > 3 ? ` and ${d.chunkIds.length - 3} more` : ''}` : '';
  return `  ${d.kind}: ${where}${d.pack ? ` pack ${d.pack}` : ''}${chunks}: ${d.what}`;
}

export function formatCheckReport(r: CheckReport): string {
  const lines = [
    `checked ${r.backups} backup(s) in ${r.projects} project(s): ${r.manifests} manifests, ${r.chunks} chunk references, ${r.packs} pack headers`,
  ];
  if (r.readDataPercent > 0) {
    const subset = r.readDataPercent < 100 ? ` (${r.readDataPercent}% subset${r.seed ? `, seed ${JSON.stringify(r.seed)}` : ''})` : '';
    lines.push(`read ${r.packsRead} pack(s)${subset}: ${r.chunksRead} chunks, ${formatBytes(r.bytesRead)} at ${formatRate(r.readMBps * 1e6)}`);
  }
  lines.push(`took ${r.seconds.toFixed(1)} s`);
  if (r.ok) lines.push('no damage found');
  else {
    lines.push(`DAMAGE: ${r.damageCount} problem(s) in ${r.damagedBackups} backup(s)${r.damageTruncated ? ` (first ${r.damage.length} shown)` : ''}:`);
    for (const d of r.damage) lines.push(damageLine(d));
  }
  return lines.join('\n') + '\n';
}

export function registerCheckCommands(program: Command, cli: CliContext): void {
  program
    .command('check')
    .description('verify stored backups: manifests, chunk index and packs (reads the storage directly, not the API)')
    .addOption(new Option('--read-data', 'also read every referenced pack and verify every chunk').conflicts('readDataSubset'))
    .addOption(new Option('--read-data-subset <percent>', 'read this share of the packs, e.g. 10% (picked by pack, see --seed)').argParser(percentage))
    .option('--seed <text>', 'picks which packs --read-data-subset reads: another seed, another subset', nonEmpty)
    .addHelpText(
      'after',
      `
Checks every available backup of the project named by --project, or of every project when none is given.
Reads the backend the environment names: $OPENVBS_HOME (embedded, the default) or, with OPENVBS_BACKEND=aws,
OPENVBS_BUCKET, OPENVBS_CATALOG_TABLE, OPENVBS_CHUNK_TABLE and OPENVBS_SERVICE_KEY_ID.
Exit status: 0 no damage; ${EXIT_DAMAGE} damage found (listed by backup, segment, blocks, pack and chunk); 1 the check could not run.`,
    )
    .action(async (flags: { readData?: boolean; readDataSubset?: number; seed?: string }, command: Command) => {
      const { project } = command.optsWithGlobals<{ project?: string }>();
      const config = await checkConfig(cli.io.env);
      const [{ openRuntime }, { checkRepository }] = await Promise.all([import('../../wiring/runtime.ts'), import('../../engine/check.ts')]);
      const workers = cli.io.env.OPENVBS_CHUNK_WORKERS;
      const runtime = await openRuntime(config, workers === undefined ? {} : { workers: Number(workers) });
      // On a terminal, one progress line redrawn in place on stderr (a check of a large store takes a while).
      const tty = !cli.json && cli.io.stderr.isTTY === true;
      const now = cli.io.now ?? Date.now;
      let drawnAt = 0;
      const onProgress = (p: CheckProgress) => {
        if (!tty || now() - drawnAt < 200) return;
        drawnAt = now();
        cli.io.stderr.write(`\rchecking project ${p.projectId}: ${p.phase === 'metadata' ? `${p.backupsDone}/${p.backupsTotal} backups` : `reading packs, ${formatBytes(p.bytesRead)}`}\x1b[K`);
      };
      let report: CheckReport;
      try {
        report = await checkRepository(
          { engine: runtime.taskDeps().engine, backups: runtime.stores.backups },
          {
            ...(project ? { projectIds: [project] } : {}),
            readDataPercent: flags.readData ? 100 : (flags.readDataSubset ?? 0),
            ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
            onProgress,
          },
        );
      } finally {
        if (drawnAt) cli.io.stderr.write('\r\x1b[K');
        await runtime.close();
      }
      cli.print(report, () => formatCheckReport(report));
      if (!report.ok) {
        const message = `damage found in ${report.damagedBackups} backup(s)`;
        // The report is on stdout already; the error line (or JSON error) says why the status is not 0.
        throw new CliError('damage_found', message, { exitCode: EXIT_DAMAGE });
      }
    });
}

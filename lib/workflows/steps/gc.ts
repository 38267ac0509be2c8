// The scheduled garbage collection (functions/gc-run.ts, and `openvbs gc` locally): one run of lib/engine/gc.ts
// over every key domain, then one `gc` notification for the service (project "*"), `failure` when the run
// failed. A run that found another holding the lease does nothing and tells nobody.
import type { BackupStore } from '../../catalog/backups.ts';
import type { GcQueue } from '../../catalog/gc-queue.ts';
import type { EngineDeps } from '../../engine/engine.ts';
import { runGc } from '../../engine/gc.ts';
import type { GcOptions, GcReport } from '../../engine/gc.ts';
import { formatNotification } from '../../notify/message.ts';
import type { Notifier } from '../../notify/notifier.ts';

export interface GcRunDeps {
  engine: EngineDeps;
  backups: BackupStore;
  gcQueue: GcQueue;
  notifier?: Notifier;
}

/** The project a service-wide notification names: subscribers filter on event `gc`. */
export const SERVICE_PROJECT = '*';

/** GC settings from the environment: OPENVBS_GC_MARGIN_HOURS (default 24). */
export function gcOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): GcOptions {
  const hours = env.OPENVBS_GC_MARGIN_HOURS === undefined ? undefined : Number(env.OPENVBS_GC_MARGIN_HOURS);
  if (hours !== undefined && !(hours > 0)) throw new Error(`OPENVBS_GC_MARGIN_HOURS must be a positive number of hours, not ${env.OPENVBS_GC_MARGIN_HOURS}`);
  return hours === undefined ? {} : { marginMs: hours * 3600_000 };
}

export function gcFacts(r: GcReport): Record<string, string | number> {
  return {
    'Key domains': r.domains,
    'Backups scanned (roots)': r.rootBackups,
    'Live chunks': r.liveChunks,
    'Index entries': r.indexEntries,
    'Entries marked / unmarked / deleted': `${r.entriesMarked} / ${r.entriesUnmarked} / ${r.indexEntriesDeleted}`,
    'Packs deleted': r.packsDeleted,
    'Packs repacked (new packs)': `${r.packsRepacked} (${r.packsWritten})`,
    'Deleted backups drained (manifests)': `${r.backupsDrained} (${r.manifestsDeleted})`,
    'Bytes freed': r.bytesFreed,
    'Bytes written by repacking': r.bytesWritten,
  };
}

export async function gcRunStep(deps: GcRunDeps, options: GcOptions = {}): Promise<GcReport> {
  const began = new Date();
  let report: GcReport;
  try {
    report = await runGc({ store: deps.engine.store, index: deps.engine.index, backups: deps.backups, gcQueue: deps.gcQueue, domains: deps.engine.domains }, options);
  } catch (err) {
    await deps.notifier?.publish(
      formatNotification({
        projectId: SERVICE_PROJECT,
        event: 'gc',
        status: 'failure',
        jobType: 'gc',
        resources: [],
        beginTime: began.toISOString(),
        endTime: new Date().toISOString(),
        reason: err instanceof Error ? err.message : String(err),
      }),
    );
    throw err;
  }
  if (report.ran && deps.notifier) {
    const n = formatNotification({
      projectId: SERVICE_PROJECT,
      event: 'gc',
      status: 'success',
      jobType: 'gc',
      resources: [],
      beginTime: began.toISOString(),
      endTime: new Date().toISOString(),
      storedBytes: report.bytesWritten,
      facts: gcFacts(report),
    });
    await deps.notifier.publish({ ...n, details: { ...n.details, report } });
  }
  return report;
}

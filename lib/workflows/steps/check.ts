// The scheduled integrity check (functions/check-run.ts): checks each project's backups (lib/engine/check.ts)
// and publishes one `check` notification per project, `failure` when damage was found. Projects are checked
// one after the other, each with its own report; when the time left runs short the run stops between projects
// and says which it did not reach (the next run, with another seed, starts over).
import { checkRepository, projectsInStore } from '../../engine/check.ts';
import type { CheckReport } from '../../engine/check.ts';
import type { EngineDeps } from '../../engine/engine.ts';
import { formatNotification } from '../../notify/message.ts';
import type { Notifier } from '../../notify/notifier.ts';
import type { BackupStore } from '../../catalog/backups.ts';

export interface CheckRunInput {
  /** Default: every project with a manifest in the store. */
  projectIds?: string[];
  /** Percent of each project's packs read and verified (0: metadata only). */
  readDataPercent?: number;
  /** Default: the day (YYYY-MM-DD), so daily runs read different subsets. */
  seed?: string;
}

export interface CheckRunDeps {
  engine: EngineDeps;
  backups: Pick<BackupStore, 'listBackups'>;
  notifier?: Notifier;
}

export interface CheckRunResult {
  projects: number;
  damagedProjects: string[];
  /** Projects the run did not reach in its time. */
  skipped: string[];
  backups: number;
  damage: number;
  bytesRead: number;
}

/** Damage entries a notification lists (the counts cover the rest). */
const NOTIFIED_DAMAGE = 20;

function notifyProject(notifier: Notifier, projectId: string, r: CheckReport, began: Date): Promise<void> {
  const facts: Record<string, string | number> = {
    'Backups checked': r.backups,
    Manifests: r.manifests,
    'Pack headers': r.packs,
    'Data read': r.readDataPercent > 0 ? `${r.packsRead} packs, ${r.bytesRead} bytes (${r.readDataPercent}% of packs, seed ${r.seed})` : 'none (metadata only)',
    'Damaged backups': r.damagedBackups,
    Problems: r.damageCount,
  };
  r.damage.slice(0, NOTIFIED_DAMAGE).forEach((d, i) => {
    const blocks = d.blocks?.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
    facts[`Damage ${i + 1}`] = [d.kind, d.backupId && `backup ${d.backupId}`, d.segment !== undefined && `segment ${d.segment}`, blocks && `blocks ${blocks}`, d.pack && `pack ${d.pack}`, d.what]
      .filter(Boolean)
      .join(', ');
  });
  const n = formatNotification({
    projectId,
    event: 'check',
    status: r.ok ? 'success' : 'failure',
    jobType: 'check',
    resources: [],
    beginTime: began.toISOString(),
    endTime: new Date().toISOString(),
    ...(r.ok ? {} : { reason: `damage found in ${r.damagedBackups} backup(s): ${r.damageCount} problem(s)` }),
    facts,
  });
  return notifier.publish({ ...n, details: { ...n.details, report: { ...r, damage: r.damage.slice(0, NOTIFIED_DAMAGE) } } });
}

export async function checkRunStep(deps: CheckRunDeps, input: CheckRunInput, timeLeftMs: () => number = () => Infinity): Promise<CheckRunResult> {
  const projects = input.projectIds ?? (await projectsInStore(deps.engine));
  const seed = input.seed ?? new Date().toISOString().slice(0, 10);
  const result: CheckRunResult = { projects: 0, damagedProjects: [], skipped: [], backups: 0, damage: 0, bytesRead: 0 };
  let slowest = 0;
  for (const [i, projectId] of projects.entries()) {
    // Room for one more project as slow as the slowest so far, and a minute to report.
    if (timeLeftMs() < slowest + 60_000) {
      result.skipped = projects.slice(i);
      break;
    }
    const began = new Date();
    const report = await checkRepository({ engine: deps.engine, backups: deps.backups }, { projectIds: [projectId], readDataPercent: input.readDataPercent ?? 0, seed });
    slowest = Math.max(slowest, Date.now() - began.getTime());
    result.projects++;
    result.backups += report.backups;
    result.damage += report.damageCount;
    result.bytesRead += report.bytesRead;
    if (!report.ok) result.damagedProjects.push(projectId);
    if (deps.notifier) await notifyProject(deps.notifier, projectId, report, began);
  }
  return result;
}

// The policy tick: what the periodic rule (every 5 minutes on AWS, a timer in `npm start`, `openvbs tick`)
// runs. Each pass, at the clock's `now`:
// 1. settles the open tasks of earlier runs (their jobs ended?) and applies retention where a backup succeeded;
// 2. for each enabled policy, takes the slots of (checkedUntil, now]: the latest one runs, once; older ones in
//    the window were missed (the tick was down) and only recorded: an outage ends in one late run, never a
//    burst. Each slot is claimed with a conditional put before it runs, so overlapping or retried ticks run a
//    slot exactly once (a tick that dies between its claim and its backups loses that slot: at most once);
// 3. moves the policy's checkedUntil to now and drops its tasks older than TASK_RETENTION_DAYS.
// A disabled policy is skipped; enabling it (or changing its schedule) restarts its window at that moment, so
// slots of the time it was off never run.
import { TASK_RETENTION_DAYS } from '../catalog/policies.ts';
import type { PolicyRecord, PolicyStore, PolicyTask } from '../catalog/policies.ts';
import type { Clock } from '../util/clock.ts';
import type { RetentionPolicy } from './retention.ts';
import type { PolicyRunner, RunStarted } from './runner.ts';
import { dueSlots } from './schedule.ts';
import type { Schedule, Weekday } from './schedule.ts';

/** At most this many missed slots of one window are recorded (claimed) as missed. */
const MAX_MISSED_RECORDED = 24;
const DAY_MS = 24 * 3600 * 1000;

/** The schedule a policy runs on (VBS precedence: frequency over week_frequency), or undefined when it has none. */
export function scheduleOf(policy: PolicyRecord): Schedule | undefined {
  if (policy.kind === 'vbs') {
    const s = policy.scheduled;
    if (!s) return undefined;
    return {
      kind: 'vbs',
      startTimes: s.startTimes,
      ...(s.frequency !== undefined ? { frequencyDays: s.frequency } : { weekDays: (s.weekFrequency ?? []) as Weekday[] }),
      timeZone: policy.timeZone,
      anchorDate: policy.anchorDate,
    };
  }
  const patterns = (policy.operations ?? []).filter((o) => o.enabled).map((o) => o.pattern);
  return patterns.length ? { kind: 'rrule', patterns, timeZone: policy.timeZone, anchorDate: policy.anchorDate } : undefined;
}

/** How a policy's backups expire (VBS precedence: rentention_num over rentention_day). */
export function retentionOf(policy: PolicyRecord): RetentionPolicy | undefined {
  if (policy.kind === 'vbs') {
    const s = policy.scheduled;
    if (!s) return undefined;
    const rule = s.retentionNum !== undefined ? { kind: 'count' as const, keep: s.retentionNum } : s.retentionDay !== undefined ? { kind: 'age' as const, days: s.retentionDay } : undefined;
    return rule ? { rule, keepFirstOfMonth: s.remainFirstBackupOfCurMonth, timeZone: policy.timeZone } : undefined;
  }
  // CSBS: the first backup operation's retention (a policy has one in practice).
  const op = (policy.operations ?? [])[0];
  if (!op || op.permanent) return undefined;
  const generations = [op.dayBackups, op.weekBackups, op.monthBackups, op.yearBackups].some((n) => n !== undefined && n > 0);
  const timeZone = op.timezone ?? policy.timeZone;
  if (generations) return { rule: { kind: 'generations', day: op.dayBackups, week: op.weekBackups, month: op.monthBackups, year: op.yearBackups }, keepFirstOfMonth: false, timeZone };
  if (op.maxBackups !== undefined && op.maxBackups > 0) return { rule: { kind: 'count', keep: op.maxBackups }, keepFirstOfMonth: false, timeZone };
  if (op.retentionDurationDays !== undefined && op.retentionDurationDays > 0) return { rule: { kind: 'age', days: op.retentionDurationDays }, keepFirstOfMonth: false, timeZone };
  return undefined;
}

export interface TickDeps {
  policies: PolicyStore;
  runner: PolicyRunner;
  clock: Clock;
}

export interface TickReport {
  at: string;
  /** Runs started by this pass. */
  runs: RunStarted[];
  /** Slots found missed (they do not run). */
  missed: Array<{ projectId: string; policyId: string; slot: string }>;
  /** Tasks of earlier runs this pass saw end. */
  settled: PolicyTask[];
}

/** One pass over every policy (or one project's). */
export async function runTick(deps: TickDeps, scope?: { projectId: string }): Promise<TickReport> {
  const now = deps.clock.now();
  const report: TickReport = { at: now.toISOString(), runs: [], missed: [], settled: await deps.runner.settle(scope) };
  const policies = scope ? await deps.policies.list(scope.projectId) : await deps.policies.listAll();
  for (const policy of policies) {
    await deps.policies.expireTasks(policy.projectId, policy.policyId, new Date(now.getTime() - TASK_RETENTION_DAYS * DAY_MS).toISOString());
    if (!policy.enabled) continue;
    const schedule = scheduleOf(policy);
    if (!schedule) continue;
    const due = dueSlots(schedule, new Date(policy.checkedUntil), now);
    if (due.fire) {
      for (const slot of due.missed.slice(-MAX_MISSED_RECORDED)) {
        if (await deps.policies.claimSlot(policy.projectId, policy.policyId, slot.toISOString(), 'missed', now.toISOString())) {
          report.missed.push({ projectId: policy.projectId, policyId: policy.policyId, slot: slot.toISOString() });
        }
      }
      if (await deps.policies.claimSlot(policy.projectId, policy.policyId, due.fire.at.toISOString(), 'run', now.toISOString())) {
        report.runs.push(await deps.runner.run(policy, due.fire.at, { late: due.fire.late, trigger: 'schedule' }));
      }
    }
    if (now.toISOString() > policy.checkedUntil) {
      await deps.policies.update(policy.projectId, policy.policyId, { checkedUntil: now.toISOString() }).catch(() => undefined);
    }
  }
  return report;
}

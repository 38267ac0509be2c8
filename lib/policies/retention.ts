// Which of the backups a policy made of one resource have expired. Pure: the runner (./runner.ts) reads the
// backups, asks here, and deletes through the backup services (which keep their own locks and statuses).
//
// Backups are ordered by the slot they were made for (newest first). A "good" backup is one that can restore
// (available, or being restored from right now). Rules:
// - count (VBS rentention_num, CSBS max_backups): the newest N good backups stay; everything older than the
//   oldest of them has expired (failed backups included); failed backups newer than it stay for now.
// - age (VBS rentention_day, CSBS retention_duration_days): backups whose slot is older than N days have
//   expired, except the newest good backup, which always stays (a resource that stopped backing up keeps one).
// - generations (CSBS day/week/month/year_backups, in the rule's time zone): the newest good backup of each of
//   the latest N days, weeks (ISO), months and years that have one stays; other good backups have expired, and
//   failed ones older than the oldest backup kept.
// - keepFirstOfMonth (VBS remain_first_backup_of_curMonth): the first good backup of the current month (in the
//   policy's zone) stays besides, whatever the rule says. Once the month has turned it is an ordinary backup.
// - none (CSBS permanent): nothing expires.
import { DateTime } from 'luxon';
import { zoneOf } from './schedule.ts';

export type RetentionRule =
  | { kind: 'count'; keep: number }
  | { kind: 'age'; days: number }
  | { kind: 'generations'; day?: number; week?: number; month?: number; year?: number }
  | { kind: 'none' };

export interface RetentionPolicy {
  rule: RetentionRule;
  keepFirstOfMonth: boolean;
  /** Zone of "month", "day", "week", "year". */
  timeZone: string;
}

export interface RetentionCandidate {
  backupId: string;
  /** ISO instant of the slot the backup was made for. */
  slot: string;
  /** available | restoring count as good; anything else does not. */
  status: string;
}

const GOOD = new Set(['available', 'restoring']);
const DAY_MS = 24 * 3600 * 1000;

/** The candidates that have expired under `policy` at `now`, newest first. */
export function expiredBackups(candidates: readonly RetentionCandidate[], policy: RetentionPolicy, now: Date): RetentionCandidate[] {
  const newestFirst = [...candidates].sort((a, b) => (a.slot < b.slot ? 1 : a.slot > b.slot ? -1 : a.backupId < b.backupId ? 1 : -1));
  const good = newestFirst.filter((c) => GOOD.has(c.status));
  const zone = zoneOf(policy.timeZone) ?? 'utc';
  const local = (iso: string) => DateTime.fromISO(iso, { zone });
  const kept = new Set<string>();
  let expired: (c: RetentionCandidate) => boolean;

  const rule = policy.rule;
  switch (rule.kind) {
    case 'none':
      return [];
    case 'count': {
      if (good.length <= rule.keep) return [];
      const oldestKept = good[rule.keep - 1]!;
      for (const c of good.slice(0, rule.keep)) kept.add(c.backupId);
      expired = (c) => !kept.has(c.backupId) && c.slot <= oldestKept.slot;
      break;
    }
    case 'age': {
      const cutoff = new Date(now.getTime() - rule.days * DAY_MS).toISOString();
      if (good[0]) kept.add(good[0].backupId);
      expired = (c) => !kept.has(c.backupId) && c.slot < cutoff;
      break;
    }
    case 'generations': {
      const buckets: Array<[number | undefined, (d: DateTime) => string]> = [
        [rule.day, (d) => d.toISODate()!],
        [rule.week, (d) => `${d.weekYear}-W${d.weekNumber}`],
        [rule.month, (d) => d.toFormat('yyyy-MM')],
        [rule.year, (d) => d.toFormat('yyyy')],
      ];
      for (const [count, bucketOf] of buckets) {
        if (!count) continue;
        const seen = new Set<string>();
        for (const c of good) {
          const bucket = bucketOf(local(c.slot));
          if (seen.has(bucket)) continue;
          if (seen.size >= count) break;
          seen.add(bucket);
          kept.add(c.backupId);
        }
      }
      if (!kept.size && good[0]) kept.add(good[0].backupId);
      const oldestKept = [...good].reverse().find((c) => kept.has(c.backupId));
      expired = (c) => !kept.has(c.backupId) && (GOOD.has(c.status) || (oldestKept !== undefined && c.slot < oldestKept.slot));
      break;
    }
  }

  if (policy.keepFirstOfMonth) {
    const month = DateTime.fromJSDate(now, { zone }).toFormat('yyyy-MM');
    const first = [...good].reverse().find((c) => local(c.slot).toFormat('yyyy-MM') === month);
    if (first) kept.add(first.backupId);
  }
  return newestFirst.filter((c) => !kept.has(c.backupId) && expired(c));
}

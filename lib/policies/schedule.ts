// When a backup policy fires: the slots (instants) of a VBS `scheduled_policy` or of a CSBS RRULE, the slots
// due in a tick's window, and how missed slots collapse into one late run.
//
// Wall-clock arithmetic (time zones, days, weekdays, DST) is luxon's and RRULE expansion is the `rrule`
// package's; nothing here adds days or offsets by hand.
//
// VBS: each start time ("HH:mm", in the policy's time zone) on each day the policy runs: every `frequency`
// days counted from the policy's anchor date (the day its schedule was set), or on the `week_frequency`
// weekdays; `frequency` wins when both are given. A wall time that does not exist (a DST gap) runs at the
// first instant after it, as luxon resolves it; one that exists twice runs once.
// CSBS: an RRULE (FREQ=DAILY or WEEKLY, BYDAY, BYHOUR, BYMINUTE, INTERVAL) read in the policy's time zone.
import { DateTime, FixedOffsetZone, IANAZone } from 'luxon';
import type { Zone } from 'luxon';
import * as rrulePkg from 'rrule';
import type { Options as RRuleOptions } from 'rrule';

// rrule ships CommonJS (`main`) and ES modules (`module`): Node imports the CommonJS build, whose exports sit on
// `default`; esbuild bundles the ES build, whose exports are named. Both see the same RRule.
const { RRule } = 'RRule' in rrulePkg ? rrulePkg : (rrulePkg as unknown as { default: typeof rrulePkg }).default;

export const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A VBS schedule as the tick reads it (already validated). */
export interface VbsSchedule {
  kind: 'vbs';
  /** "HH:mm", distinct. */
  startTimes: string[];
  /** Every N days from `anchorDate`; wins over `weekDays`. */
  frequencyDays?: number;
  weekDays?: Weekday[];
  timeZone: string;
  /** yyyy-mm-dd in `timeZone`: day 0 of `frequencyDays`. */
  anchorDate: string;
}

/** A CSBS schedule: one or more RRULEs (a policy's enabled scheduled operations). */
export interface RruleSchedule {
  kind: 'rrule';
  patterns: string[];
  timeZone: string;
  /** yyyy-mm-dd in `timeZone`: the rules' DTSTART day (matters for INTERVAL > 1). */
  anchorDate: string;
}

export type Schedule = VbsSchedule | RruleSchedule;

/** Windows longer than this are cut to their last part: only the latest slots of a long outage matter. */
const MAX_WINDOW_MS = 400 * 24 * 3600 * 1000;

/**
 * The zone a policy names: `UTC`, `UTC+08:00` / `UTC-3` (fixed offsets, as VBS writes them), or an IANA name
 * (`Europe/Berlin`, an OpenVBS extension). Undefined when it names none.
 */
export function zoneOf(timeZone: string): Zone | undefined {
  const fixed = /^(?:UTC|GMT)(?:([+-])(\d{1,2})(?::?(\d{2}))?)?$/i.exec(timeZone.trim());
  if (fixed) {
    const hours = Number(fixed[2] ?? 0);
    const minutes = Number(fixed[3] ?? 0);
    if (minutes >= 60) return undefined;
    const offset = (fixed[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
    if (offset < -12 * 60 || offset > 14 * 60) return undefined;
    return FixedOffsetZone.instance(offset);
  }
  return IANAZone.isValidZone(timeZone) ? IANAZone.create(timeZone) : undefined;
}

function requireZone(timeZone: string): Zone {
  const zone = zoneOf(timeZone);
  if (!zone) throw new Error(`unknown time zone ${timeZone}`);
  return zone;
}

/** The local date (yyyy-mm-dd) of `at` in `timeZone`. */
export function localDate(at: Date, timeZone: string): string {
  return DateTime.fromJSDate(at, { zone: requireZone(timeZone) }).toISODate()!;
}

/** "yyyy-MM" of `at` in `timeZone` (retention's "current month"). */
export function localMonth(at: Date, timeZone: string): string {
  return DateTime.fromJSDate(at, { zone: requireZone(timeZone) }).toFormat('yyyy-MM');
}

/** `at` in `timeZone` as `yyyyMMddHHmm` (names of policy backups). */
export function localStamp(at: Date, timeZone: string): string {
  return DateTime.fromJSDate(at, { zone: requireZone(timeZone) }).toFormat('yyyyMMddHHmm');
}

/** Every slot of `schedule` in (from, to], oldest first. */
export function slotsBetween(schedule: Schedule, from: Date, to: Date): Date[] {
  if (to.getTime() <= from.getTime()) return [];
  const start = new Date(Math.max(from.getTime(), to.getTime() - MAX_WINDOW_MS));
  const slots = schedule.kind === 'vbs' ? vbsSlots(schedule, start, to) : rruleSlots(schedule, start, to);
  const unique = [...new Set(slots.map((d) => d.getTime()))].filter((t) => t > start.getTime() && t <= to.getTime());
  return unique.sort((a, b) => a - b).map((t) => new Date(t));
}

function vbsSlots(schedule: VbsSchedule, from: Date, to: Date): Date[] {
  const zone = requireZone(schedule.timeZone);
  const anchor = DateTime.fromISO(schedule.anchorDate, { zone }).startOf('day');
  const times = schedule.startTimes.map((t) => t.split(':').map(Number) as [number, number]);
  const out: Date[] = [];
  const last = DateTime.fromJSDate(to, { zone }).startOf('day');
  for (let day = DateTime.fromJSDate(from, { zone }).startOf('day'); day <= last; day = day.plus({ days: 1 })) {
    if (!runsOn(schedule, day, anchor)) continue;
    for (const [hour, minute] of times) out.push(day.set({ hour, minute, second: 0, millisecond: 0 }).toJSDate());
  }
  return out;
}

function runsOn(schedule: VbsSchedule, day: DateTime, anchor: DateTime): boolean {
  if (schedule.frequencyDays !== undefined) {
    const days = Math.round(day.diff(anchor, 'days').days);
    return days >= 0 && days % schedule.frequencyDays === 0;
  }
  const weekday = WEEKDAYS[day.weekday - 1]!;
  return (schedule.weekDays ?? []).includes(weekday);
}

// ---- RRULE (CSBS) ----

/** The RRULE text of a CSBS pattern: a bare `FREQ=...`, an `RRULE:` line, or a VCALENDAR holding one. */
export function rruleText(pattern: string): string {
  const line = /(?:^|[\r\n])RRULE:([^\r\n]+)/i.exec(pattern)?.[1] ?? pattern.trim().replace(/^RRULE:/i, '');
  return line.trim();
}

const ALLOWED_PARTS = new Set(['FREQ', 'INTERVAL', 'BYDAY', 'BYHOUR', 'BYMINUTE', 'WKST', 'COUNT', 'UNTIL']);
const HOUR_MS = 3600 * 1000;

/**
 * Parses and checks a CSBS pattern: FREQ DAILY or WEEKLY, only the parts CSBS documents, and no two runs
 * less than an hour apart. Returns why not, or undefined when it is acceptable.
 */
export function rruleRefusal(pattern: string): string | undefined {
  const text = rruleText(pattern);
  if (!text) return 'the pattern holds no RRULE';
  const parts = text.split(';').filter(Boolean);
  for (const part of parts) {
    const [name, value] = part.split('=');
    if (!name || value === undefined || value === '') return `malformed RRULE part "${part}"`;
    if (!ALLOWED_PARTS.has(name.toUpperCase())) return `RRULE part ${name} is not supported (FREQ, INTERVAL, BYDAY, BYHOUR, BYMINUTE)`;
  }
  let options: Partial<RRuleOptions>;
  try {
    options = RRule.parseString(text);
  } catch (err) {
    return `invalid RRULE: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (options.freq !== RRule.DAILY && options.freq !== RRule.WEEKLY) return 'RRULE FREQ must be DAILY or WEEKLY';
  // Two weeks of occurrences show every gap a DAILY or WEEKLY rule can have (INTERVAL aside, which only widens them).
  const probe = new RRule({ ...options, count: null, until: null, dtstart: new Date(Date.UTC(2024, 0, 1)) });
  let occurrences: Date[];
  try {
    occurrences = probe.between(new Date(Date.UTC(2024, 0, 1)), new Date(Date.UTC(2024, 0, 29)), true);
  } catch (err) {
    return `invalid RRULE: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (!occurrences.length) return 'the RRULE never fires';
  for (let i = 1; i < occurrences.length; i++) {
    if (occurrences[i]!.getTime() - occurrences[i - 1]!.getTime() < HOUR_MS) return 'the RRULE fires more often than once an hour';
  }
  return undefined;
}

/** A wall time in `zone` written as the same fields in UTC ("floating" time, how `rrule` computes). */
function floating(at: Date, zone: Zone): Date {
  const local = DateTime.fromJSDate(at, { zone });
  return new Date(Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second, local.millisecond));
}

function rruleSlots(schedule: RruleSchedule, from: Date, to: Date): Date[] {
  const zone = requireZone(schedule.timeZone);
  const anchor = DateTime.fromISO(schedule.anchorDate, { zone: 'utc' }).startOf('day').toJSDate();
  const out: Date[] = [];
  for (const pattern of schedule.patterns) {
    // Parts the rule leaves out (BYHOUR, BYMINUTE) come from DTSTART: midnight of the anchor day.
    const rule = new RRule({ ...RRule.parseString(rruleText(pattern)), dtstart: anchor });
    // A DST shift moves wall times by up to an hour (or two): widen the floating window, then filter by instant.
    const after = new Date(floating(from, zone).getTime() - 3 * HOUR_MS);
    const before = new Date(floating(to, zone).getTime() + 3 * HOUR_MS);
    for (const wall of rule.between(after, before, true)) {
      const at = DateTime.fromObject(
        { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate(), hour: wall.getUTCHours(), minute: wall.getUTCMinutes() },
        { zone },
      );
      out.push(at.toJSDate());
    }
  }
  return out;
}

// ---- due slots ----

/** A slot that fired later than this after its time is marked late. */
export const LATE_AFTER_MS = 15 * 60 * 1000;

export interface DueSlots {
  /** The slot to run now: the latest in the window. */
  fire?: { at: Date; late: boolean };
  /** Older slots of the window, missed (the tick was down): they do not run, the latest stands for them. */
  missed: Date[];
}

/**
 * What a tick at `now` does with the slots of (from, now]: runs the latest one once (late when it is more than
 * LATE_AFTER_MS old or others were missed), never the missed ones too: an outage never ends in a burst.
 */
export function dueSlots(schedule: Schedule, from: Date, now: Date): DueSlots {
  const slots = slotsBetween(schedule, from, now);
  const latest = slots.at(-1);
  if (!latest) return { missed: [] };
  const missed = slots.slice(0, -1);
  return { fire: { at: latest, late: missed.length > 0 || now.getTime() - latest.getTime() > LATE_AFTER_MS }, missed };
}

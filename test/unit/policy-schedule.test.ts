// Schedule math and retention of backup policies: pure functions, exact instants.
import { describe, expect, it } from 'vitest';
import { expiredBackups } from '../../lib/policies/retention.ts';
import type { RetentionCandidate } from '../../lib/policies/retention.ts';
import { dueSlots, rruleRefusal, slotsBetween, zoneOf } from '../../lib/policies/schedule.ts';
import type { VbsSchedule } from '../../lib/policies/schedule.ts';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());
const vbs = (over: Partial<VbsSchedule>): VbsSchedule => ({ kind: 'vbs', startTimes: ['02:00'], timeZone: 'UTC', anchorDate: '2025-03-01', ...over });

describe('VBS schedules', () => {
  it('puts start times on the week days in the policy zone (UTC+08:00 moves Monday 02:00 to Sunday 18:00 UTC)', () => {
    const s = vbs({ startTimes: ['02:00', '14:00'], weekDays: ['MON', 'THU'], timeZone: 'UTC+08:00' });
    expect(iso(slotsBetween(s, new Date('2025-03-02T00:00:00Z'), new Date('2025-03-07T00:00:00Z')))).toEqual([
      '2025-03-02T18:00:00.000Z',
      '2025-03-03T06:00:00.000Z',
      '2025-03-05T18:00:00.000Z',
      '2025-03-06T06:00:00.000Z',
    ]);
  });

  it('counts frequency days from the anchor day, and frequency wins over week days', () => {
    const s = vbs({ frequencyDays: 3, weekDays: ['MON'] });
    expect(iso(slotsBetween(s, new Date('2025-03-01T00:00:00Z'), new Date('2025-03-10T12:00:00Z')))).toEqual([
      '2025-03-01T02:00:00.000Z',
      '2025-03-04T02:00:00.000Z',
      '2025-03-07T02:00:00.000Z',
      '2025-03-10T02:00:00.000Z',
    ]);
  });

  it('is (from, to]: a slot at `from` is not due again, one at `to` is', () => {
    const s = vbs({ frequencyDays: 1 });
    expect(iso(slotsBetween(s, new Date('2025-03-02T02:00:00Z'), new Date('2025-03-03T02:00:00Z')))).toEqual(['2025-03-03T02:00:00.000Z']);
  });

  it('follows DST in a named zone (02:30 does not exist on 30 March 2025 in Berlin and runs at 03:30 CEST)', () => {
    const s = vbs({ startTimes: ['02:30'], frequencyDays: 1, timeZone: 'Europe/Berlin' });
    expect(iso(slotsBetween(s, new Date('2025-03-29T00:00:00Z'), new Date('2025-03-31T12:00:00Z')))).toEqual([
      '2025-03-29T01:30:00.000Z',
      '2025-03-30T01:30:00.000Z',
      '2025-03-31T00:30:00.000Z',
    ]);
  });

  it('collapses missed slots into one late run of the latest', () => {
    const s = vbs({ frequencyDays: 1 });
    expect(dueSlots(s, new Date('2025-03-02T01:00:00Z'), new Date('2025-03-02T02:05:00Z'))).toEqual({ fire: { at: new Date('2025-03-02T02:00:00Z'), late: false }, missed: [] });
    expect(dueSlots(s, new Date('2025-03-02T01:00:00Z'), new Date('2025-03-02T03:00:00Z')).fire?.late).toBe(true);
    const outage = dueSlots(s, new Date('2025-03-02T01:00:00Z'), new Date('2025-03-05T01:00:00Z'));
    expect(outage.fire).toEqual({ at: new Date('2025-03-04T02:00:00Z'), late: true });
    expect(iso(outage.missed)).toEqual(['2025-03-02T02:00:00.000Z', '2025-03-03T02:00:00.000Z']);
    expect(dueSlots(s, new Date('2025-03-02T02:00:00Z'), new Date('2025-03-02T03:00:00Z'))).toEqual({ missed: [] });
  });

  it('reads zones as VBS writes them', () => {
    expect(zoneOf('UTC+08:00')?.offset(0)).toBe(480);
    expect(zoneOf('UTC-3')?.offset(0)).toBe(-180);
    expect(zoneOf('UTC+14:00')?.offset(0)).toBe(840);
    expect(zoneOf('UTC+15:00')).toBeUndefined();
    expect(zoneOf('UTC+08:75')).toBeUndefined();
    expect(zoneOf('Nowhere/Else')).toBeUndefined();
  });
});

describe('CSBS RRULEs', () => {
  const weekly = 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=2,14;BYMINUTE=0\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';

  it('expands a VCALENDAR RRULE in the policy zone across a DST change', () => {
    const s = { kind: 'rrule' as const, patterns: [weekly], timeZone: 'Europe/Berlin', anchorDate: '2025-03-01' };
    expect(iso(slotsBetween(s, new Date('2025-03-26T00:00:00Z'), new Date('2025-04-01T00:00:00Z')))).toEqual([
      '2025-03-27T01:00:00.000Z',
      '2025-03-27T13:00:00.000Z',
      '2025-03-31T00:00:00.000Z',
      '2025-03-31T12:00:00.000Z',
    ]);
  });

  it('refuses what CSBS does not allow', () => {
    expect(rruleRefusal(weekly)).toBeUndefined();
    expect(rruleRefusal('FREQ=DAILY;BYHOUR=3;BYMINUTE=15')).toBeUndefined();
    expect(rruleRefusal('FREQ=HOURLY')).toMatch(/DAILY or WEEKLY/);
    expect(rruleRefusal('FREQ=DAILY;BYHOUR=1,2;BYMINUTE=0,30')).toMatch(/more often than once an hour/);
    expect(rruleRefusal('FREQ=DAILY;BYSECOND=5')).toMatch(/not supported/);
    expect(rruleRefusal('not a rule')).toBeDefined();
  });
});

describe('retention', () => {
  const day = (d: number, status = 'available'): RetentionCandidate => ({ backupId: `b${String(d).padStart(2, '0')}`, slot: new Date(Date.UTC(2025, 2, d, 2)).toISOString(), status });
  const ids = (c: RetentionCandidate[]) => c.map((x) => x.backupId).sort();
  const now = new Date('2025-03-20T00:00:00Z');

  it('by count keeps the newest N good backups; older failed ones go, newer failed ones stay', () => {
    const c = [day(1), day(2, 'error'), day(3), day(4), day(5, 'error'), day(6)];
    expect(ids(expiredBackups(c, { rule: { kind: 'count', keep: 3 }, keepFirstOfMonth: false, timeZone: 'UTC' }, now))).toEqual(['b01', 'b02']);
    expect(expiredBackups(c, { rule: { kind: 'count', keep: 4 }, keepFirstOfMonth: false, timeZone: 'UTC' }, now)).toEqual([]);
  });

  it('keeps the first good backup of the current month besides', () => {
    const c = [day(1, 'error'), day(2), day(3), day(4), day(5)];
    expect(ids(expiredBackups(c, { rule: { kind: 'count', keep: 2 }, keepFirstOfMonth: true, timeZone: 'UTC' }, now))).toEqual(['b01', 'b03']);
    // In April, March's first is an ordinary backup.
    expect(ids(expiredBackups(c, { rule: { kind: 'count', keep: 2 }, keepFirstOfMonth: true, timeZone: 'UTC' }, new Date('2025-04-02T00:00:00Z')))).toEqual(['b01', 'b02', 'b03']);
  });

  it('by age drops what is older than N days but always keeps the newest good backup', () => {
    const c = [day(1), day(10), day(15)];
    expect(ids(expiredBackups(c, { rule: { kind: 'age', days: 7 }, keepFirstOfMonth: false, timeZone: 'UTC' }, now))).toEqual(['b01', 'b10']);
    expect(ids(expiredBackups(c, { rule: { kind: 'age', days: 2 }, keepFirstOfMonth: false, timeZone: 'UTC' }, now))).toEqual(['b01', 'b10']);
  });

  it('by generations keeps the newest of each of the latest days, weeks and months', () => {
    const c = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14].map((d) => day(d));
    const kept = (rule: { day?: number; week?: number; month?: number }) => {
      const expired = new Set(ids(expiredBackups(c, { rule: { kind: 'generations', ...rule }, keepFirstOfMonth: false, timeZone: 'UTC' }, now)));
      return c.map((x) => x.backupId).filter((b) => !expired.has(b));
    };
    expect(kept({ day: 3 })).toEqual(['b12', 'b13', 'b14']);
    // ISO weeks of March 2025 end on Sundays 2, 9 and 16.
    expect(kept({ day: 1, week: 3 })).toEqual(['b02', 'b09', 'b14']);
    expect(kept({ month: 1 })).toEqual(['b14']);
  });

  it('never expires anything without a rule', () => {
    expect(expiredBackups([day(1), day(2)], { rule: { kind: 'none' }, keepFirstOfMonth: false, timeZone: 'UTC' }, now)).toEqual([]);
  });
});

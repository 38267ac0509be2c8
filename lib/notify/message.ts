// What a job's notification says: a one-line subject and a readable body (what ran, on which resources, the
// result, how long it took, how much data, and why it failed), plus the same facts as JSON for machines.
//
// Table-driven: EVENT_TEXT has one entry per NotifyEvent that names what ran (a job type may refine it, as a
// server backup does a backup). A new kind of job (GC, check, policy run) adds its event to NOTIFY_EVENTS and
// one entry here; everything else (subject, body, JSON, SMS) follows from the outcome it reports.
import type { Notification, NotifyEvent, NotifyStatus } from './notifier.ts';

/** A resource the job concerned, as the body lists it ("Volume: data-disk (id)"). */
export interface OutcomeResource {
  /** volume, backup, server, checkpoint, policy... (the JSON's `type`). */
  kind: string;
  id: string;
  name?: string;
  /** How the body labels it, when not the capitalised kind (e.g. "Target volume"). */
  label?: string;
}

/** What a job that ended reports; the formatter turns it into a Notification. */
export interface JobOutcome {
  projectId: string;
  event: NotifyEvent;
  status: NotifyStatus;
  jobId?: string;
  /** The VBS job type (bksCreateBackup...), or the kind of run for jobs that have none. */
  jobType?: string;
  /** The job's own status (SUCCESS, FAIL) when there is a job record. */
  jobStatus?: string;
  /** The job's VBS `entities` (kept in the JSON as they were). */
  entities?: Record<string, string>;
  /** The first resource is what the subject names. */
  resources: OutcomeResource[];
  /** ISO times. */
  beginTime?: string;
  endTime?: string;
  /** Bytes the job covered (the volume's or server's disks' size). */
  sizeBytes?: number;
  /** Bytes the job wrote to backup storage (new data after dedup and compression). */
  storedBytes?: number;
  reason?: string;
  errorCode?: string;
  /** Further facts of this kind of job, one body line each (e.g. GC: "Packs removed: 3"). */
  facts?: Record<string, string | number>;
}

export interface EventText {
  /** What ran, capitalised: "Backup", "Server backup". */
  what(o: JobOutcome): string;
}

const SERVER_JOB_TYPES = new Set(['bksCreateServerBackup', 'bksRestoreServerBackup', 'bksDeleteServerBackup']);
const isServerJob = (o: JobOutcome) => o.jobType !== undefined && SERVER_JOB_TYPES.has(o.jobType);

/** One entry per event: a new event adds its line here. */
export const EVENT_TEXT: Record<NotifyEvent, EventText> = {
  backup: { what: (o) => (isServerJob(o) ? 'Server backup' : 'Backup') },
  restore: { what: (o) => (isServerJob(o) ? 'Server restore' : 'Restore') },
  delete: { what: (o) => (isServerJob(o) ? 'Server backup deletion' : 'Backup deletion') },
  check: { what: () => 'Integrity check' },
  gc: { what: () => 'Garbage collection' },
  policy: { what: () => 'Backup policy run' },
};

/** SNS subjects: ASCII, no line breaks, fewer than 100 characters. */
const SUBJECT_MAX = 99;

/** `12.3 MiB`, `512 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `2 h 3 min`, `4 min 5 s`, `0.4 s`. */
export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (h) return `${h} h ${m} min`;
  return m ? `${m} min ${sec} s` : `${sec} s`;
}

/** Printable ASCII only, one line, at most `max` characters. */
function asciiLine(s: string, max: number): string {
  const clean = s.replace(/\s+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

const capitalised = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);
const named = (r: OutcomeResource) => (r.name ? `${r.name} (${r.id})` : r.id);

function durationMs(o: JobOutcome): number | undefined {
  if (!o.beginTime || !o.endTime) return undefined;
  const ms = Date.parse(o.endTime) - Date.parse(o.beginTime);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** The subject, body text and JSON details of a job's outcome. */
export function formatNotification(o: JobOutcome): Notification {
  const what = EVENT_TEXT[o.event].what(o);
  const result = o.status === 'success' ? 'succeeded' : 'failed';
  const target = o.resources[0];
  const subject = asciiLine(`OpenVBS: ${what}${target ? ` of ${target.kind} ${target.name || target.id}` : ''} ${result}`, SUBJECT_MAX);
  const ms = durationMs(o);

  const lines: Array<[string, string]> = [['Project', o.projectId]];
  if (o.jobId) lines.push(['Job', o.jobType ? `${o.jobId} (${o.jobType})` : o.jobId]);
  for (const r of o.resources) lines.push([r.label ?? capitalised(r.kind), named(r)]);
  lines.push(['Result', o.status === 'success' ? 'succeeded' : `FAILED${o.errorCode ? ` (${o.errorCode})` : ''}`]);
  if (o.status === 'failure') lines.push(['Reason', o.reason || 'not recorded']);
  if (o.beginTime) lines.push(['Started', o.beginTime]);
  if (o.endTime) lines.push(['Ended', o.endTime]);
  if (ms !== undefined) lines.push(['Duration', formatDuration(ms)]);
  if (o.sizeBytes !== undefined) lines.push(['Size', formatBytes(o.sizeBytes)]);
  if (o.storedBytes !== undefined) lines.push(['Stored', `${formatBytes(o.storedBytes)} of new data`]);
  for (const [k, v] of Object.entries(o.facts ?? {})) lines.push([k, String(v)]);
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  const text = [`${what} ${result}.`, '', ...lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`), ''].join('\n');

  return {
    projectId: o.projectId,
    event: o.event,
    status: o.status,
    subject,
    text,
    details: {
      subject,
      job_id: o.jobId ?? null,
      job_type: o.jobType ?? null,
      job_status: o.jobStatus ?? null,
      entities: o.entities ?? {},
      resources: o.resources.map((r) => ({ type: r.kind, id: r.id, name: r.name ?? null })),
      fail_reason: o.status === 'failure' ? (o.reason ?? null) : null,
      error_code: o.errorCode ?? null,
      begin_time: o.beginTime ?? null,
      end_time: o.endTime ?? null,
      duration_seconds: ms === undefined ? null : Math.round(ms / 100) / 10,
      size_bytes: o.sizeBytes ?? null,
      stored_bytes: o.storedBytes ?? null,
      ...(o.facts ? { facts: o.facts } : {}),
      text,
    },
  };
}

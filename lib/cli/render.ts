// Text output of the CLI, as pure functions: tables, `key: value` blocks, sizes, rates, durations and
// the job progress line. MB is 10^6 bytes (as the benchmarks print it).

/** A value as one table cell or `key: value` value. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'string') return value.replace(/[\r\n\t]+/g, ' ');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const text = [headers.map(String), ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/**
 * One `key: value` line per field, values aligned. Nested objects are flattened one level
 * (`entities.backup_id: …`); arrays and deeper values are shown as JSON.
 */
export function formatKeyValue(obj: Readonly<Record<string, unknown>>): string {
  const entries: [string, string][] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [k2, v2] of Object.entries(v)) entries.push([`${k}.${k2}`, cell(v2)]);
    } else {
      entries.push([k, cell(v)]);
    }
  }
  const width = Math.max(0, ...entries.map(([k]) => k.length + 1));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n') + (entries.length ? '\n' : '');
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

function unitIndex(bytes: number): number {
  let i = 0;
  while (i < UNITS.length - 1 && Math.abs(bytes) >= 1000 ** (i + 1)) i++;
  return i;
}

function inUnit(bytes: number, i: number): string {
  return i === 0 ? String(Math.round(bytes)) : (bytes / 1000 ** i).toFixed(1);
}

/** 1234567 -> "1.2 MB" (decimal units). */
export function formatBytes(bytes: number): string {
  const i = unitIndex(bytes);
  return `${inUnit(bytes, i)} ${UNITS[i]}`;
}

/** 1234567 -> "1.2 MB (1234567 bytes)": readable and exact; below 1 kB just "512 B". */
export function formatBytesExact(bytes: number): string {
  return unitIndex(bytes) === 0 ? formatBytes(bytes) : `${formatBytes(bytes)} (${bytes} bytes)`;
}

/** "230.1/512.0 MB": both in the unit of the total. */
export function formatBytesOf(done: number, total: number): string {
  const i = unitIndex(Math.max(total, done));
  return `${inUnit(done, i)}/${inUnit(total, i)} ${UNITS[i]}`;
}

/** Bytes per second as "85.3 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

/** Seconds as "m:ss" or "h:mm:ss" (rounded up, so a remaining 0.2 s shows as 0:01). */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** An elapsed time for a summary: "850 ms", "6.2 s", "2:05". */
export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatClock(ms / 1000);
}

export interface ProgressOptions {
  /** Bytes per second to show and to estimate from; default bytesDone / elapsed. */
  rate?: number;
  /** Percent to show when the total is not known in bytes (the job's `progress`). */
  percent?: number;
  /** Width of the bar between the brackets; default 24. */
  barWidth?: number;
}

/**
 * The progress line of a running job:
 * `[############------------]  50%  256.0/512.0 MB  64.0 MB/s  ETA 0:04`.
 * Unknown quantities show as `--`.
 */
export function formatProgress(bytesDone: number, bytesTotal: number, elapsedMs: number, options: ProgressOptions = {}): string {
  const width = options.barWidth ?? 24;
  const done = Math.max(0, bytesDone);
  const total = Math.max(0, bytesTotal);
  const rate = options.rate ?? (elapsedMs > 0 ? done / (elapsedMs / 1000) : 0);
  const fraction = total > 0 ? Math.min(1, done / total) : Math.min(100, Math.max(0, options.percent ?? 0)) / 100;
  const percent = Math.floor(fraction * 100);
  const filled = Math.floor(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const parts = [bar, `${String(percent).padStart(3)}%`];
  parts.push(total > 0 ? formatBytesOf(done, total) : done > 0 ? formatBytes(done) : '-- MB');
  parts.push(rate > 0 && Number.isFinite(rate) ? formatRate(rate) : '-- MB/s');
  const eta = total > 0 && rate > 0 && Number.isFinite(rate) ? formatClock((total - Math.min(done, total)) / rate) : '--:--';
  parts.push(`ETA ${eta}`);
  return parts.join('  ');
}

/** Fits a line into `columns` characters (terminal width), cutting at the end. */
export function fitLine(line: string, columns: number | undefined): string {
  if (!columns || columns <= 1 || line.length < columns) return line;
  return line.slice(0, columns - 1);
}

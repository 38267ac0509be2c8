// The race's table per (image × storage) and its JSON: medians over the rounds of wall time, CPU (user +
// system) and peak RSS per tool and phase, with OpenVBS ÷ restic; stored bytes as the growth of the storage
// and as each tool reports it.
import { f0, f1, f2, mb, median } from '../lib/units.ts';
import type { ChildTiming } from './children.ts';
import type { StorageKind, ToolName } from './contestants.ts';
import type { BackupPhase, RoundResult } from './rounds.ts';

export const STORAGE_LABELS: Record<StorageKind, string> = {
  fs: 'local filesystem — OpenVBS embedded home (objects as files; catalog, chunk index in SQLite) vs a restic repository in a folder',
  s3: 'S3 emulator (one moto for the race) — OpenVBS AWS backend (S3 bucket, DynamoDB index, KMS) vs restic -r s3:',
};

export type Rounds = Record<ToolName, RoundResult[]>;

type PhaseName = 'full' | 'incremental' | 'restore';
const PHASES: Array<{ name: PhaseName; label: string }> = [
  { name: 'full', label: 'full backup' },
  { name: 'incremental', label: 'incremental (1% changed)' },
  { name: 'restore', label: 'restore (SHA-256 checked)' },
];

const timingOf = (r: RoundResult, phase: PhaseName): ChildTiming => r[phase].timing;
const med = (rounds: RoundResult[], pick: (r: RoundResult) => number) => median(rounds.map(pick));
const ratio = (openvbs: number, restic: number) => (restic > 0 ? `${f2(openvbs / restic)}x` : '-');

function summary(rounds: Rounds) {
  const phase = (name: PhaseName) => {
    const one = (tool: ToolName) => {
      const rs = rounds[tool];
      return {
        wallS: med(rs, (r) => timingOf(r, name).wallS),
        cpuS: med(rs, (r) => timingOf(r, name).cpuS),
        machineCpuS: med(rs, (r) => timingOf(r, name).machineCpuS),
        // The highest of the rounds: the peak a user must provision for.
        peakRssBytes: Math.max(...rs.map((r) => timingOf(r, name).maxRssBytes)),
        ...(name === 'restore' ? { syncS: +med(rs, (r) => r.restore.syncS).toFixed(3), sha256Equal: rs.every((r) => r.restore.sha256Equal) } : {}),
      };
    };
    return { restic: one('restic'), openvbs: one('openvbs') };
  };
  const stored = (name: 'full' | 'incremental') => {
    const one = (tool: ToolName) => ({
      storageBytes: med(rounds[tool], (r) => r[name].storedBytes),
      reportedBytes: med(rounds[tool], (r) => r[name].reportedBytes),
    });
    return { restic: one('restic'), openvbs: one('openvbs') };
  };
  const side = rounds.openvbs.map((r) => r.use.afterIncremental.sideBytes).filter((b): b is number => b !== undefined);
  return {
    full: phase('full'),
    incremental: phase('incremental'),
    restore: phase('restore'),
    stored: { full: stored('full'), incremental: stored('incremental') },
    openvbsSideBytes: side.length ? median(side) : null,
  };
}

const col = (s: string, w: number) => s.padStart(w);

export function raceTable(imageLabel: string, storage: StorageKind, rounds: Rounds): string[] {
  const s = summary(rounds);
  const n = `${rounds.restic.length} + ${rounds.openvbs.length}`;
  const out = [
    `${imageLabel} × ${STORAGE_LABELS[storage]}`,
    `  rounds ${n} (restic, OpenVBS, restic, ... each on a fresh repository); medians; each phase a child under /usr/bin/time; ratio = OpenVBS ÷ restic`,
    `  ${'phase'.padEnd(27)}${col('wall s', 22)}  ${col('CPU s (user+sys)', 22)}  ${col('peak RSS MB', 23)}  ${col('machine CPU s', 15)}`,
    `  ${''.padEnd(27)}${col('restic', 8)}${col('OpenVBS', 8)}${col('ratio', 6)}  ${col('restic', 8)}${col('OpenVBS', 8)}${col('ratio', 6)}  ${col('restic', 8)}${col('OpenVBS', 9)}${col('ratio', 6)}  ${col('restic', 7)}${col('OpenVBS', 8)}`,
  ];
  for (const { name, label } of PHASES) {
    const { restic: r, openvbs: o } = s[name];
    out.push(
      `  ${label.padEnd(27)}${col(f2(r.wallS), 8)}${col(f2(o.wallS), 8)}${col(ratio(o.wallS, r.wallS), 6)}  ` +
        `${col(f1(r.cpuS), 8)}${col(f1(o.cpuS), 8)}${col(ratio(o.cpuS, r.cpuS), 6)}  ` +
        `${col(f0(mb(r.peakRssBytes)), 8)}${col(f0(mb(o.peakRssBytes)), 9)}${col(ratio(o.peakRssBytes, r.peakRssBytes), 6)}  ${col(f1(r.machineCpuS), 7)}${col(f1(o.machineCpuS), 8)}`,
    );
  }
  const rr = s.restore;
  out.push(
    `  ${'restore + sync afterwards'.padEnd(27)}${col(f2(rr.restic.wallS + (rr.restic.syncS ?? 0)), 8)}${col(f2(rr.openvbs.wallS + (rr.openvbs.syncS ?? 0)), 8)}` +
      `${col(ratio(rr.openvbs.wallS + (rr.openvbs.syncS ?? 0), rr.restic.wallS + (rr.restic.syncS ?? 0)), 6)}  ` +
      `(restic leaves its writes in the page cache; OpenVBS fdatasyncs the target before it exits)`,
  );
  out.push(`  restored image SHA-256: restic ${rr.restic.sha256Equal ? 'equal' : 'DIFFERENT'} in every round, OpenVBS ${rr.openvbs.sha256Equal ? 'equal' : 'DIFFERENT'} in every round`);
  out.push(`  ${'stored MB'.padEnd(27)}${col('growth of the storage', 22)}    ${'as the tool reports it (restic data_added_packed; OpenVBS stats.storedBytes)'}`);
  for (const name of ['full', 'incremental'] as const) {
    const { restic: r, openvbs: o } = s.stored[name];
    out.push(
      `  ${name.padEnd(27)}${col(f1(mb(r.storageBytes)), 8)}${col(f1(mb(o.storageBytes)), 8)}${col(ratio(o.storageBytes, r.storageBytes), 6)}    ` +
        `${col(f1(mb(r.reportedBytes)), 8)}${col(f1(mb(o.reportedBytes)), 8)}${col(ratio(o.reportedBytes, r.reportedBytes), 6)}`,
    );
  }
  if (s.openvbsSideBytes !== null) out.push(`  beside its objects, the OpenVBS home holds ${f1(mb(s.openvbsSideBytes))} MB (SQLite catalog and chunk index, keys); restic's index is inside its repository`);
  if (storage === 's3') out.push('  OpenVBS\'s chunk index and catalog live in DynamoDB (not counted above); restic\'s index is in its bucket');
  const list = (tool: ToolName, name: PhaseName) => rounds[tool].map((r) => f1(timingOf(r, name).wallS)).join(' ');
  out.push(`  wall s per round: ${PHASES.map(({ name }) => `${name} restic [${list('restic', name)}] OpenVBS [${list('openvbs', name)}]`).join('; ')}`);
  return out;
}

function backupJson(p: BackupPhase) {
  return { ...p.timing, storedBytes: p.storedBytes, reportedBytes: p.reportedBytes, id: p.id, parentId: p.parentId, report: p.report, pageCacheDropped: p.pageCacheDropped };
}

export function raceJson(rounds: Rounds) {
  const perRound = (rs: RoundResult[]) =>
    rs.map((r) => ({
      round: r.round,
      full: backupJson(r.full),
      incremental: backupJson(r.incremental),
      restore: { ...r.restore.timing, syncS: +r.restore.syncS.toFixed(3), sha256Equal: r.restore.sha256Equal, pageCacheDropped: r.restore.pageCacheDropped },
      use: r.use,
    }));
  return { medians: summary(rounds), rounds: { restic: perRound(rounds.restic), openvbs: perRound(rounds.openvbs) } };
}

/** True when every restore of both tools matched the image bit for bit. */
export const allRestoresEqual = (rounds: Rounds) => [...rounds.restic, ...rounds.openvbs].every((r) => r.restore.sha256Equal);

import { describe, expect, it } from 'vitest';
import {
  cell,
  fitLine,
  formatBytes,
  formatBytesExact,
  formatBytesOf,
  formatClock,
  formatElapsed,
  formatKeyValue,
  formatProgress,
  formatRate,
  formatTable,
} from '../../lib/cli/render.ts';
import { backupCost, backupType, formatBackupShow, formatBackupTable, nextMarker } from '../../lib/cli/commands/backups.ts';
import type { Backup } from '../../lib/cli/client.ts';

describe('formatProgress', () => {
  it('shows bar, percent, done/total, MB/s from elapsed time and ETA', () => {
    // 256 MB of 512 MB in 4 s: 64 MB/s, 4 s to go.
    expect(formatProgress(256e6, 512e6, 4000)).toBe('[############------------]   50%  256.0/512.0 MB  64.0 MB/s  ETA 0:04');
  });

  it('computes the ETA from the given rate when there is one', () => {
    // 1 GB of 10 GB at 100 MB/s: 90 s left.
    expect(formatProgress(1e9, 10e9, 1000, { rate: 100e6 })).toBe('[##----------------------]   10%  1.0/10.0 GB  100.0 MB/s  ETA 1:30');
  });

  it('formats long ETAs with hours', () => {
    // 1 GB in 10 s is 100 MB/s; 9,999 GB to go take 99,990 s.
    expect(formatProgress(1e9, 10e12, 10_000)).toBe('[------------------------]    0%  0.0/10.0 TB  100.0 MB/s  ETA 27:46:30');
  });

  it('shows unknowns as -- before any work is measured', () => {
    expect(formatProgress(0, 0, 0)).toBe('[------------------------]    0%  -- MB  -- MB/s  ETA --:--');
    expect(formatProgress(0, 512e6, 2000)).toBe('[------------------------]    0%  0.0/512.0 MB  -- MB/s  ETA --:--');
  });

  it('falls back to the job percent when bytes are not known', () => {
    expect(formatProgress(0, 0, 1000, { percent: 75 })).toMatch(/^\[#{18}-{6}\] {3}75%/);
  });

  it('is full and at 0:00 when done, and never beyond 100 %', () => {
    expect(formatProgress(512e6, 512e6, 8000)).toBe('[########################]  100%  512.0/512.0 MB  64.0 MB/s  ETA 0:00');
    expect(formatProgress(600e6, 512e6, 8000)).toMatch(/^\[#{24}\] {2}100%/);
  });

  it('takes a bar width', () => {
    expect(formatProgress(5e6, 10e6, 1000, { barWidth: 10 })).toMatch(/^\[#{5}-{5}\] {3}50%/);
  });
});

describe('sizes, rates and times', () => {
  it('formats bytes in decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    expect(formatBytes(41_947_136)).toBe('41.9 MB');
    expect(formatBytes(2.5e12)).toBe('2.5 TB');
    expect(formatBytesOf(1e6, 2e9)).toBe('0.0/2.0 GB');
    expect(formatRate(82_600_000)).toBe('82.6 MB/s');
  });

  it('formats bytes readable and exact', () => {
    expect(formatBytesExact(41_947_136)).toBe('41.9 MB (41947136 bytes)');
    expect(formatBytesExact(1000)).toBe('1.0 kB (1000 bytes)');
    expect(formatBytesExact(999)).toBe('999 B');
    expect(formatBytesExact(0)).toBe('0 B');
  });

  it('formats clocks and elapsed times', () => {
    expect(formatClock(0)).toBe('0:00');
    expect(formatClock(0.2)).toBe('0:01');
    expect(formatClock(61)).toBe('1:01');
    expect(formatClock(3600 + 62)).toBe('1:01:02');
    expect(formatElapsed(850)).toBe('850 ms');
    expect(formatElapsed(6200)).toBe('6.2 s');
    expect(formatElapsed(125_000)).toBe('2:05');
  });

  it('cuts lines to the terminal width', () => {
    expect(fitLine('abcdef', 4)).toBe('abc');
    expect(fitLine('abc', 80)).toBe('abc');
    expect(fitLine('abc', undefined)).toBe('abc');
  });
});

describe('formatTable', () => {
  it('pads columns to the widest cell, two spaces apart, without trailing blanks', () => {
    const text = formatTable(
      ['ID', 'NAME', 'SIZE'],
      [
        ['a', 'first', 1],
        ['bbbbbb', null, 10],
      ],
    );
    expect(text).toBe(['ID      NAME   SIZE', 'a       first  1', 'bbbbbb  -      10', ''].join('\n'));
  });

  it('prints the header alone for no rows', () => {
    expect(formatTable(['ID', 'NAME'], [])).toBe('ID  NAME\n');
  });

  it('lays out the backup list with what each backup stored', () => {
    const backups = [
      {
        id: 'bk-1',
        name: 'nightly',
        status: 'available',
        volume_id: 'vol-1',
        size: 2,
        is_incremental: false,
        created_at: '2025-01-01T10:00:00Z',
        'os-openvbs-bak-stats-attr:stats': { stored_bytes: 1_234_567 },
      },
      { id: 'bk-22', name: 'n2', status: 'error', volume_id: 'vol-1', size: 0, service_metadata: '{"Type":1}', created_at: '2025-01-02T10:00:00Z', 'os-openvbs-bak-stats-attr:stats': { stored_bytes: null } },
      { id: 'bk-3', name: 'old', status: 'available', volume_id: 'vol-1', size: 1, is_incremental: true, created_at: '2025-01-03T10:00:00Z' },
    ] as Backup[];
    expect(formatBackupTable(backups)).toBe(
      [
        'ID     NAME     STATUS     VOLUME  SIZE_GB  STORED  TYPE         CREATED',
        'bk-1   nightly  available  vol-1   2        1.2 MB  full         2025-01-01T10:00:00Z',
        'bk-22  n2       error      vol-1   0        -       incremental  2025-01-02T10:00:00Z',
        'bk-3   old      available  vol-1   1        -       incremental  2025-01-03T10:00:00Z',
        '',
      ].join('\n'),
    );
  });

  it('shows a backup with its cost last, and dashes while it is not committed', () => {
    const stats = { stored_bytes: 9_876_543, new_chunks: 32, reused_blocks: 2000, dedup_blocks: 40, zero_blocks: 1000, blocks: 3072, logical_bytes: 1e9, packs_written: 1, parent_backup_id: 'bk-0' };
    expect(formatBackupShow({ id: 'bk-1', name: 'n', status: 'available', volume_id: 'vol-1', 'os-openvbs-bak-stats-attr:stats': stats } as Backup)).toBe(
      [
        'id:               bk-1',
        'name:             n',
        'status:           available',
        'volume_id:        vol-1',
        'stored_bytes:     9.9 MB (9876543 bytes)',
        'new_chunks:       32',
        'reused_blocks:    2000',
        'dedup_blocks:     40',
        'zero_blocks:      1000',
        'parent_backup_id: bk-0',
        '',
      ].join('\n'),
    );
    const nulls = Object.fromEntries(Object.keys(stats).map((k) => [k, null]));
    const creating = formatBackupShow({ id: 'bk-2', name: 'n', status: 'creating', volume_id: 'vol-1', 'os-openvbs-bak-stats-attr:stats': nulls } as Backup);
    expect(creating.split('\n').slice(4, 10)).toEqual(['stored_bytes:     -', 'new_chunks:       -', 'reused_blocks:    -', 'dedup_blocks:     -', 'zero_blocks:      -', 'parent_backup_id: -']);
  });

  it('reads the cost only from an object', () => {
    expect(backupCost({ 'os-openvbs-bak-stats-attr:stats': { new_chunks: 3 } } as unknown as Backup)).toEqual({ new_chunks: 3 });
    expect(backupCost({ 'os-openvbs-bak-stats-attr:stats': 'lots' } as unknown as Backup)).toBeUndefined();
    expect(backupCost({ 'os-openvbs-bak-stats-attr:stats': [1] } as unknown as Backup)).toBeUndefined();
    expect(backupCost({ id: 'x' } as Backup)).toBeUndefined();
  });
});

describe('formatKeyValue', () => {
  it('aligns values and flattens nested objects one level', () => {
    expect(formatKeyValue({ job_id: 'j1', status: 'SUCCESS', fail_reason: null, entities: { backup_id: 'b1' }, sub_jobs: [] })).toBe(
      ['job_id:             j1', 'status:             SUCCESS', 'fail_reason:        -', 'entities.backup_id: b1', 'sub_jobs:           []', ''].join('\n'),
    );
  });

  it('keeps cells on one line', () => {
    expect(cell('a\nb')).toBe('a b');
    expect(cell(undefined)).toBe('-');
    expect(cell(false)).toBe('false');
    expect(cell([{ rel: 'self' }])).toBe('[{"rel":"self"}]');
  });
});

describe('list helpers', () => {
  it('finds the next-page marker in backups_links', () => {
    expect(nextMarker([{ rel: 'next', href: 'http://h/v2/p/backups/detail?limit=1&marker=bk-1' }])).toBe('bk-1');
    expect(nextMarker([{ rel: 'next', href: '/v2/p/backups/detail?marker=bk-9' }])).toBe('bk-9');
    expect(nextMarker([{ rel: 'self', href: 'x' }])).toBeUndefined();
    expect(nextMarker(undefined)).toBeUndefined();
  });

  it('tells full from incremental backups', () => {
    expect(backupType({ is_incremental: true } as Backup)).toBe('incremental');
    expect(backupType({ service_metadata: '{"Type":0}' } as Backup)).toBe('full');
    expect(backupType({ service_metadata: 'not json' } as Backup)).toBeUndefined();
  });
});

// The notification formatter: every event has an entry; subject and body name what ran, on which resources,
// the result, duration, size and the reason of a failure; subjects stay within SNS's rules.
import { describe, expect, it } from 'vitest';
import { EVENT_TEXT, formatBytes, formatDuration, formatNotification } from '../../lib/notify/message.ts';
import type { JobOutcome } from '../../lib/notify/message.ts';
import { NOTIFY_EVENTS, emailText, notificationBody, smsText } from '../../lib/notify/notifier.ts';

const base: JobOutcome = {
  projectId: 'proj-1',
  event: 'backup',
  status: 'success',
  jobId: 'job-1',
  jobType: 'bksCreateBackup',
  jobStatus: 'SUCCESS',
  entities: { backup_id: 'b-1', volume_id: 'v-1' },
  resources: [
    { kind: 'volume', id: 'v-1', name: 'data-disk' },
    { kind: 'backup', id: 'b-1', name: 'nightly' },
  ],
  beginTime: '2026-01-02T03:04:05.000Z',
  endTime: '2026-01-02T03:06:10.000Z',
  sizeBytes: 40 * 1024 * 1024,
  storedBytes: 3 * 1024 * 1024 + 512 * 1024,
};

describe('formatNotification', () => {
  it('has an entry for every event', () => {
    expect(Object.keys(EVENT_TEXT).sort()).toEqual([...NOTIFY_EVENTS].sort());
  });

  it('a successful backup: subject names what and which volume; body lists resources, result, duration and sizes', () => {
    const n = formatNotification(base);
    expect(n.subject).toBe('OpenVBS: Backup of volume data-disk succeeded');
    expect(n.text).toContain('Backup succeeded.');
    expect(n.text).toMatch(/Volume:\s+data-disk \(v-1\)/);
    expect(n.text).toMatch(/Backup:\s+nightly \(b-1\)/);
    expect(n.text).toMatch(/Job:\s+job-1 \(bksCreateBackup\)/);
    expect(n.text).toMatch(/Result:\s+succeeded/);
    expect(n.text).toMatch(/Duration:\s+2 min 5 s/);
    expect(n.text).toMatch(/Size:\s+40\.0 MiB/);
    expect(n.text).toMatch(/Stored:\s+3\.5 MiB of new data/);
    expect(n.text).not.toMatch(/Reason/);
    const body = notificationBody(n);
    expect(body).toMatchObject({
      project_id: 'proj-1',
      event: 'backup',
      status: 'success',
      job_id: 'job-1',
      duration_seconds: 125,
      size_bytes: 40 * 1024 * 1024,
      stored_bytes: 3.5 * 1024 * 1024,
      fail_reason: null,
      resources: [
        { type: 'volume', id: 'v-1', name: 'data-disk' },
        { type: 'backup', id: 'b-1', name: 'nightly' },
      ],
    });
    expect(emailText(n)).toBe(n.text);
  });

  it('a failure carries the reason and code in the body, the JSON and the SMS line', () => {
    const n = formatNotification({ ...base, status: 'failure', jobStatus: 'FAIL', reason: 'short read at block 3', errorCode: 'VolumeBackup.0014' });
    expect(n.subject).toBe('OpenVBS: Backup of volume data-disk failed');
    expect(n.text).toMatch(/Result:\s+FAILED \(VolumeBackup\.0014\)/);
    expect(n.text).toMatch(/Reason:\s+short read at block 3/);
    expect(n.details.fail_reason).toBe('short read at block 3');
    expect(smsText(n)).toBe('OpenVBS: Backup of volume data-disk failed: short read at block 3');
  });

  it('names server jobs as such, and labels a restore target', () => {
    const server = formatNotification({
      ...base,
      event: 'restore',
      jobType: 'bksRestoreServerBackup',
      resources: [
        { kind: 'server', id: 's-1', name: 'web-1' },
        { kind: 'checkpoint', label: 'Server backup', id: 'c-1', name: 'before-upgrade' },
      ],
    });
    expect(server.subject).toBe('OpenVBS: Server restore of server web-1 succeeded');
    expect(server.text).toMatch(/Server backup:\s+before-upgrade \(c-1\)/);
    const del = formatNotification({ ...base, event: 'delete', jobType: 'bksDeleteServerBackup', resources: [{ kind: 'checkpoint', id: 'c-1' }] });
    expect(del.subject).toBe('OpenVBS: Server backup deletion of checkpoint c-1 succeeded');
    const restore = formatNotification({ ...base, event: 'restore', jobType: 'bksRestoreBackup', resources: [{ kind: 'volume', label: 'Target volume', id: 'v-2' }] });
    expect(restore.text).toMatch(/Target volume:\s+v-2/);
  });

  it('keeps the subject printable ASCII, on one line, under 100 characters', () => {
    const n = formatNotification({ ...base, resources: [{ kind: 'volume', id: 'v-1', name: `Größe\n${'x'.repeat(200)}` }] });
    expect(n.subject.length).toBeLessThan(100);
    expect(n.subject).toMatch(/^[\x20-\x7e]+$/);
    expect(n.subject.startsWith('OpenVBS: Backup of volume Gr??e x')).toBe(true);
    // the body keeps the name as it is
    expect(n.text).toContain('Größe');
  });

  it('leaves out what it does not know, and says a failure reason was not recorded', () => {
    const n = formatNotification({ projectId: 'p', event: 'delete', status: 'failure', resources: [] });
    expect(n.subject).toBe('OpenVBS: Backup deletion failed');
    expect(n.text).toMatch(/Reason:\s+not recorded/);
    expect(n.text).not.toMatch(/Duration|Size|Job:/);
    expect(n.details).toMatchObject({ duration_seconds: null, size_bytes: null, job_id: null });
  });

  it('adds an event’s own facts as lines', () => {
    const n = formatNotification({ ...base, facts: { 'Packs removed': 3 } });
    expect(n.text).toMatch(/Packs removed:\s+3/);
    expect(n.details.facts).toEqual({ 'Packs removed': 3 });
  });
});

describe('sizes and durations', () => {
  it('reads like a person would write them', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 4)).toBe('5.0 TiB');
    expect(formatDuration(420)).toBe('0.4 s');
    expect(formatDuration(59_000)).toBe('59 s');
    expect(formatDuration(3_725_000)).toBe('1 h 2 min');
  });
});

// Holes cost nothing, end to end: a 16 TiB volume created through the API with 128 MB of scattered data is
// backed up and restored to a new 16 TiB volume through the real HTTP API on the local runtime (embedded
// backend, the synthesized workflows in-process). The restored data is bit-exact and the restored image is
// as sparse as the source: its 16 TiB of holes were never read nor written.
//
// The home (and so the managed images) lives on tmpfs at /dev/shm: ext4 refuses files of 16 TiB.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ByteRange } from '../../lib/engine/ports.ts';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { apiCall, waitForJob } from '../support/api-call.ts';
import { TiB, allocatedBytes, dataRangesOf, hashRanges, requireSeekmap, sparseRoot, writeScattered } from '../support/sparse-image.ts';

const SIZE = 16 * TiB;
const PIECES = 128;
const PIECE_BYTES = 1024 * 1024;
const total = (ranges: ByteRange[]) => ranges.reduce((n, r) => n + r.length, 0);
const overlaps = (a: ByteRange, b: ByteRange) => a.offset < b.offset + b.length && b.offset < a.offset + a.length;

describe('a 16 TiB sparse volume through the API (embedded backend)', () => {
  let svc: LocalService;
  let home: string;

  const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
  const p = () => `/v2/${svc.projectId}`;

  const waitJob = (jobId: string) => waitForJob(api, svc.projectId, jobId, 300_000);

  async function createVolume(name: string) {
    const res = await api('POST', `${p()}/volumes`, { volume: { name, size: SIZE / 1024 ** 3 } });
    expect(res.status).toBe(200);
    expect(res.body.volume.size_bytes).toBe(SIZE);
    return res.body.volume as { id: string; path: string };
  }

  beforeAll(async () => {
    requireSeekmap();
    home = await mkdtemp(join(await sparseRoot(SIZE), 'openvbs-e2e-sparse-'));
    svc = await startLocalService({ backend: 'embedded', port: 0, home, workers: 1, prefix: `sparse${randomBytes(4).toString('hex')}` });
  });

  afterAll(async () => {
    await svc?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('backs up and restores only the data, and the restored image stays sparse', async () => {
    const source = await createVolume('sparse-source');
    const pieces = await writeScattered(source.path, SIZE, PIECES, PIECE_BYTES, 3);
    const sourceAllocated = await allocatedBytes(source.path);

    const backup = await api('POST', `${p()}/cloudbackups`, { backup: { volume_id: source.id, name: 'sparse-16t' } });
    expect(backup.status).toBe(200);
    const backupJob = await waitJob(backup.body.job_id);
    expect(backupJob.status).toBe('SUCCESS');
    const backupId = backupJob.entities.backup_id;
    const shown = (await api('GET', `${p()}/backups/${backupId}`)).body.backup;
    expect(shown.status).toBe('available');
    expect(shown.size).toBe(16384);
    const stats = shown['os-openvbs-bak-stats-attr:stats'];
    // about the data stored (half the pieces are random), never the 16 TiB
    expect(stats.stored_bytes).toBeGreaterThan(total(pieces) / 4);
    expect(stats.stored_bytes).toBeLessThan(total(pieces) * 2);

    const target = await createVolume('sparse-target');
    const restore = await api('POST', `${p()}/cloudbackups/${backupId}/restore`, { restore: { volume_id: target.id } });
    expect(restore.status).toBe(200);
    expect((await waitJob(restore.body.job_id)).status).toBe('SUCCESS');

    // bit-exact where the source holds data ...
    expect(await hashRanges(target.path, pieces)).toBe(await hashRanges(source.path, pieces));
    // ... and data nowhere else: every data range of the restored image lies on a piece of the source
    const restoredData = await dataRangesOf(target.path);
    for (const r of restoredData) expect(pieces.some((piece) => overlaps(r, piece))).toBe(true);
    expect(total(restoredData)).toBeLessThanOrEqual(total(pieces) + PIECES * 128 * 1024);
    expect(await allocatedBytes(target.path)).toBeLessThanOrEqual(sourceAllocated + PIECES * 128 * 1024);
  });
});

// Workflow steps run as Step Functions would run them, including retries: against the emulator with
// the real stores, the API's service starting the jobs (its starter only records the executions).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../lib/aws/s3-object-store.ts';
import { ChunkPool } from '../../lib/engine/chunk-pool.ts';
import { listGcQueue } from '../../lib/catalog/gc-queue.ts';
import { BackupDeleteInput, VolumeBackupInput, VolumeRestoreInput } from '../../lib/workflows/contracts.ts';
import { buildTaskDeps } from '../../lib/workflows/runtime.ts';
import type { TaskDeps } from '../../lib/workflows/tasks.ts';
import { backupCommit, backupFail, backupPrepare, deleteBackupTask, backupSegmentTask, failureReason, restoreCommit, restorePrepare, restoreSegmentTask } from '../../lib/workflows/tasks.ts';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { createServiceEnv } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

const SIZE = 24 * 1024 * 1024;

async function packCount(env: ServiceEnv): Promise<number> {
  let n = 0;
  for await (const _ of new S3ObjectStore(env.clients.s3, env.config.bucket).list('packs/')) n++;
  return n;
}

describe('workflow steps', () => {
  let env: ServiceEnv;
  let deps: TaskDeps;
  let pool: ChunkPool;

  beforeAll(async () => {
    env = await createServiceEnv();
    pool = new ChunkPool({ workers: 1 });
    deps = buildTaskDeps(env.config, env.clients, { pool, engine: { segmentBlocks: 16 } });
  });
  afterAll(async () => {
    await pool.close();
    await env.close();
  });

  it('gives the same backup when Step Functions retries a segment or the commit', async () => {
    const vol = await env.service.createVolume('p1', { name: 'v', sizeBytes: SIZE });
    await writeDiskImage(vol.path, SIZE, 21, { zero: 0.2, text: 0.4, random: 0.4, copy: 0 });
    const { jobId } = await env.service.createBackup('p1', { volumeId: vol.volumeId, name: 'retried' });
    const input = VolumeBackupInput.parse(env.workflows.last().input);

    const work = await backupPrepare(deps, input);
    expect(work.segments).toEqual([0, 1, 2]);
    expect(await backupPrepare(deps, input)).toEqual(work); // a retried prepare reuses the backup
    for (const segment of work.segments) await backupSegmentTask(deps, { ...input, segment });
    const packsAfterFirstRun = await packCount(env);
    // every segment again, as after a timeout: nothing stored twice
    for (const segment of work.segments) {
      const again = await backupSegmentTask(deps, { ...input, segment });
      expect(again.newChunks).toBe(0);
      expect(again.storedBytes).toBe(0);
    }
    expect(await packCount(env)).toBe(packsAfterFirstRun);
    await backupCommit(deps, input);
    await backupCommit(deps, input);

    const job = (await env.jobs.get('p1', jobId))!;
    expect(job.status).toBe('SUCCESS');
    expect(job.bytesDone).toBe(SIZE);
    expect((await env.volumes.get('p1', vol.volumeId))!.status).toBe('available');
    const backup = (await env.catalog.getBackup('p1', input.backupId))!;
    expect(backup.status).toBe('available');
    expect(backup.stats!.chunkCount + backup.stats!.zeroBlocks).toBe(48);

    // a late failure-path call cannot undo a committed backup or reopen its job
    await backupFail(deps, { ...input, error: { Error: 'States.Timeout', Cause: 'late' } });
    expect((await env.catalog.getBackup('p1', input.backupId))!.status).toBe('available');
    expect((await env.jobs.get('p1', jobId))!.status).toBe('SUCCESS');

    const target = await env.service.createVolume('p1', { name: 't', sizeBytes: SIZE });
    await env.service.restoreBackup('p1', input.backupId, target.volumeId);
    const rInput = VolumeRestoreInput.parse(env.workflows.last().input);
    const rWork = await restorePrepare(deps, rInput);
    for (const segment of rWork.segments) {
      await restoreSegmentTask(deps, { ...rInput, segment });
      await restoreSegmentTask(deps, { ...rInput, segment }); // retried
    }
    await restoreCommit(deps, rInput);
    expect(await sha256File(target.path)).toBe(await sha256File(vol.path));
    expect((await env.catalog.getBackup('p1', input.backupId))!.status).toBe('available');
    expect((await env.volumes.get('p1', target.volumeId))!.status).toBe('available');
  });

  it('deletes a backup from the catalog and queues it for GC, once, also when retried', async () => {
    const vol = await env.service.createVolume('p2', { name: 'd', sizeBytes: 4 * 1024 * 1024 });
    await writeDiskImage(vol.path, 4 * 1024 * 1024, 4, { zero: 0, text: 1, random: 0, copy: 0 });
    await env.service.createBackup('p2', { volumeId: vol.volumeId, name: 'doomed' });
    const input = VolumeBackupInput.parse(env.workflows.last().input);
    for (const segment of (await backupPrepare(deps, input)).segments) await backupSegmentTask(deps, { ...input, segment });
    await backupCommit(deps, input);
    const backup = (await env.catalog.getBackup('p2', input.backupId))!;

    const { jobId } = await env.service.deleteBackup('p2', input.backupId);
    const del = BackupDeleteInput.parse(env.workflows.last().input);
    await deleteBackupTask(deps, del);
    await deleteBackupTask(deps, del); // retried after the first attempt succeeded
    expect(await env.catalog.getBackup('p2', input.backupId)).toBeUndefined();
    expect((await env.jobs.get('p2', jobId))!.status).toBe('SUCCESS');
    const queued = (await listGcQueue(env.clients.ddb, env.config.catalogTable)).filter((e) => e.backupId === input.backupId);
    expect(queued).toEqual([expect.objectContaining({ projectId: 'p2', domainId: backup.domainId, manifestPrefix: backup.manifestPrefix, segmentCount: 1 })]);
  });

  it('reads the failure reason from Lambda and from the local runner', () => {
    expect(failureReason({ Error: 'Error', Cause: JSON.stringify({ errorType: 'Error', errorMessage: 'disk gone' }) })).toBe('disk gone');
    expect(failureReason({ Error: 'Error', Cause: 'short read of volume v' })).toBe('short read of volume v');
    expect(failureReason({ Error: 'States.Timeout' })).toBe('States.Timeout');
    expect(failureReason(undefined)).toBe('unknown error');
  });
});

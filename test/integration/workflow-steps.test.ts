// Workflow steps run as Step Functions would run them, including retries, on both backends with the real
// stores, the services starting the jobs (their starter only records the executions).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../../lib/service/factory.ts';
import type { Services } from '../../lib/service/factory.ts';
import { BackupDeleteInput, VolumeBackupInput, VolumeRestoreInput } from '../../lib/workflows/contracts.ts';
import { deleteBackupStep, deleteFail } from '../../lib/workflows/steps/backup-delete.ts';
import type { TaskDeps } from '../../lib/workflows/steps/deps.ts';
import { failureReason } from '../../lib/workflows/steps/job.ts';
import { backupCommit, backupFail, backupPrepare, backupSegmentStep } from '../../lib/workflows/steps/volume-backup.ts';
import { restoreCommit, restorePrepare, restoreSegmentStep } from '../../lib/workflows/steps/volume-restore.ts';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { BACKENDS, createRuntimeEnv } from '../support/runtime-env.ts';
import type { RuntimeEnv } from '../support/runtime-env.ts';
import { RecordingStarter } from '../service/service-env.ts';

const SIZE = 24 * 1024 * 1024;

async function packCount(env: RuntimeEnv): Promise<number> {
  let n = 0;
  for await (const _ of env.backend.objects.list('packs/')) n++;
  return n;
}

describe.each(BACKENDS)('workflow steps (%s backend)', (backend) => {
  let env: RuntimeEnv;
  let deps: TaskDeps;
  let services: Services;
  let workflows: RecordingStarter;

  beforeAll(async () => {
    env = await createRuntimeEnv(backend, { workers: 1, engine: { segmentBlocks: 16 } });
    deps = env.runtime.taskDeps();
    workflows = new RecordingStarter();
    services = createServices({ stores: env.stores, keys: env.backend.keys, workflows, provider: env.runtime.volumes, dataDir: env.path('data') });
  });
  afterAll(async () => {
    await env.close();
  });

  it('gives the same backup when Step Functions retries a segment or the commit', async () => {
    const vol = await services.volumes.create('p1', { name: 'v', sizeBytes: SIZE });
    await writeDiskImage(vol.path, SIZE, 21, { zero: 0.2, text: 0.4, random: 0.4, copy: 0 });
    const { jobId } = await services.backups.create('p1', { volumeId: vol.volumeId, name: 'retried' });
    const input = VolumeBackupInput.parse(workflows.last().input);

    const work = await backupPrepare(deps, input);
    expect(work.segments).toEqual([0, 1, 2]);
    expect(await backupPrepare(deps, input)).toEqual(work); // a retried prepare reuses the backup
    const firstRun = [];
    for (const segment of work.segments) firstRun.push(await backupSegmentStep(deps, { ...input, segment }));
    const packsAfterFirstRun = await packCount(env);
    expect(packsAfterFirstRun).toBeGreaterThan(0);
    // every segment again, as after a timeout: a segment whose manifest is stored is not redone, so
    // nothing is stored twice and the step reports what the first run stored
    for (const segment of work.segments) expect(await backupSegmentStep(deps, { ...input, segment })).toEqual(firstRun[segment]);
    expect(await packCount(env)).toBe(packsAfterFirstRun);
    await backupCommit(deps, input);
    await backupCommit(deps, input);

    const job = (await env.stores.jobs.get('p1', jobId))!;
    expect(job.status).toBe('SUCCESS');
    expect(job.bytesDone).toBe(SIZE);
    expect((await env.stores.volumes.get('p1', vol.volumeId))!.status).toBe('available');
    const backup = (await env.stores.backups.getBackup('p1', input.backupId))!;
    expect(backup.status).toBe('available');
    expect(backup.stats!.chunkCount + backup.stats!.zeroBlocks).toBe(48);

    // a late failure-path call cannot undo a committed backup or reopen its job
    await backupFail(deps, { ...input, error: { Error: 'States.Timeout', Cause: 'late' } });
    expect((await env.stores.backups.getBackup('p1', input.backupId))!.status).toBe('available');
    expect((await env.stores.jobs.get('p1', jobId))!.status).toBe('SUCCESS');

    const target = await services.volumes.create('p1', { name: 't', sizeBytes: SIZE });
    await services.backups.restore('p1', input.backupId, target.volumeId);
    const rInput = VolumeRestoreInput.parse(workflows.last().input);
    const rWork = await restorePrepare(deps, rInput);
    for (const segment of rWork.segments) {
      await restoreSegmentStep(deps, { ...rInput, segment });
      await restoreSegmentStep(deps, { ...rInput, segment }); // retried
    }
    await restoreCommit(deps, rInput);
    expect(await sha256File(target.path)).toBe(await sha256File(vol.path));
    expect((await env.stores.backups.getBackup('p1', input.backupId))!.status).toBe('available');
    expect((await env.stores.volumes.get('p1', target.volumeId))!.status).toBe('available');
  });

  it('deletes a backup from the catalog and queues it for GC, once, also when retried', async () => {
    const vol = await services.volumes.create('p2', { name: 'd', sizeBytes: 4 * 1024 * 1024 });
    await writeDiskImage(vol.path, 4 * 1024 * 1024, 4, { zero: 0, text: 1, random: 0, copy: 0 });
    await services.backups.create('p2', { volumeId: vol.volumeId, name: 'doomed' });
    const input = VolumeBackupInput.parse(workflows.last().input);
    for (const segment of (await backupPrepare(deps, input)).segments) await backupSegmentStep(deps, { ...input, segment });
    await backupCommit(deps, input);
    const backup = (await env.stores.backups.getBackup('p2', input.backupId))!;

    const { jobId } = await services.backups.delete('p2', input.backupId);
    const del = BackupDeleteInput.parse(workflows.last().input);
    await deleteBackupStep(deps, del);
    await deleteBackupStep(deps, del); // retried after the first attempt succeeded
    expect(await env.stores.backups.getBackup('p2', input.backupId)).toBeUndefined();
    expect((await env.stores.jobs.get('p2', jobId))!.status).toBe('SUCCESS');
    const queued = (await env.stores.gcQueue.list()).filter((e) => e.backupId === input.backupId);
    expect(queued).toEqual([expect.objectContaining({ projectId: 'p2', domainId: backup.domainId, manifestPrefix: backup.manifestPrefix, segmentCount: 1 })]);
  });

  it('keeps the manifests of a failed backup\'s finished segments until GC, and never commits it', async () => {
    const vol = await services.volumes.create('p4', { name: 'f', sizeBytes: 24 * 1024 * 1024 });
    await writeDiskImage(vol.path, 24 * 1024 * 1024, 6, { zero: 0, text: 1, random: 0, copy: 0 });
    await services.backups.create('p4', { volumeId: vol.volumeId, name: 'failing' });
    const input = VolumeBackupInput.parse(workflows.last().input);
    const { segments } = await backupPrepare(deps, input);
    for (const segment of segments.slice(0, 2)) await backupSegmentStep(deps, { ...input, segment });
    // commit counts the recorded segments: one is missing
    await expect(backupCommit(deps, input)).rejects.toThrow(/segment 2 was not backed up/);
    await backupFail(deps, { ...input, error: { Error: 'Error', Cause: 'disk gone' } });
    const failed = (await env.stores.backups.getBackup('p4', input.backupId))!;
    expect(failed).toMatchObject({ status: 'error', failReason: 'disk gone' });
    const kept: string[] = [];
    for await (const obj of env.backend.objects.list(failed.manifestPrefix)) kept.push(obj.key);
    expect(kept).toHaveLength(2);
    await expect(backupCommit(deps, input)).rejects.toThrow(/error/);
  });

  it('puts a backup whose delete failed back as it was: available, its job FAIL with the reason', async () => {
    const vol = await services.volumes.create('p3', { name: 'k', sizeBytes: 2 * 1024 * 1024 });
    await writeDiskImage(vol.path, 2 * 1024 * 1024, 5, { zero: 0, text: 1, random: 0, copy: 0 });
    await services.backups.create('p3', { volumeId: vol.volumeId, name: 'kept' });
    const input = VolumeBackupInput.parse(workflows.last().input);
    for (const segment of (await backupPrepare(deps, input)).segments) await backupSegmentStep(deps, { ...input, segment });
    await backupCommit(deps, input);

    const { jobId } = await services.backups.delete('p3', input.backupId);
    expect((await env.stores.backups.getBackup('p3', input.backupId))!.status).toBe('deleting');
    await deleteFail(deps, { projectId: 'p3', jobId, backupId: input.backupId, error: { Error: 'Error', Cause: 'catalog unreachable' } });
    expect((await env.stores.backups.getBackup('p3', input.backupId))!).toMatchObject({ status: 'available' });
    expect((await env.stores.backups.getBackup('p3', input.backupId))!.failReason).toBeUndefined();
    expect((await env.stores.jobs.get('p3', jobId))!).toMatchObject({ status: 'FAIL', failReason: 'catalog unreachable' });
  });

  it('reads the failure reason from Lambda and from the local runner', () => {
    expect(failureReason({ Error: 'Error', Cause: JSON.stringify({ errorType: 'Error', errorMessage: 'disk gone' }) })).toBe('disk gone');
    expect(failureReason({ Error: 'Error', Cause: 'short read of volume v' })).toBe('short read of volume v');
    expect(failureReason({ Error: 'States.Timeout' })).toBe('States.Timeout');
    expect(failureReason(undefined)).toBe('unknown error');
  });
});

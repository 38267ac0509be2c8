// What a start of the local runtime does about what the previous run left, on both backends: resumable
// executions resume, jobs that never got one end FAIL through their workflow's failure step, and a volume
// locked by a job that never came to exist is released.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableExecutionStore } from '../../lib/catalog/executions.ts';
import type { JobRecord } from '../../lib/catalog/jobs.ts';
import type { VolumeRecord } from '../../lib/catalog/volumes.ts';
import { recoverInterrupted } from '../../lib/local/recovery.ts';
import type { WorkflowName } from '../../lib/workflows/registry.ts';
import { BACKENDS, createRuntimeEnv } from '../support/runtime-env.ts';
import type { RuntimeEnv } from '../support/runtime-env.ts';

const now = () => new Date().toISOString();

function volume(projectId: string, volumeId: string): VolumeRecord {
  return { projectId, volumeId, name: volumeId, sizeBytes: 1024, path: `/nowhere/${volumeId}.img`, managed: false, status: 'available', createdAt: now(), updatedAt: now() };
}

function job(projectId: string, jobId: string, over: Partial<JobRecord>): JobRecord {
  return { projectId, jobId, jobType: 'bksCreateBackup', status: 'INIT', entities: {}, bytesDone: 0, bytesTotal: 0, createdAt: now(), ...over };
}

describe.each(BACKENDS)('recovery after a stop or crash (%s backend)', (backend) => {
  let env: RuntimeEnv;
  const p = `rec${Date.now().toString(36)}`;

  beforeAll(async () => {
    env = await createRuntimeEnv(backend);
  });
  afterAll(async () => {
    await env.close();
  });

  it('resumes open executions, fails jobs that never ran, releases orphaned locks', async () => {
    const { stores } = env;
    const executions = new TableExecutionStore(env.backend.table);
    // a backup that was running: its execution is recorded
    await stores.volumes.create(volume(p, 'v-running'));
    await stores.volumes.lock(p, 'v-running', 'j-running', 'backing-up', ['available']);
    await stores.jobs.create(job(p, 'j-running', { status: 'RUNNING', entities: { backup_id: 'b-running', volume_id: 'v-running' } }));
    await executions.begin({ name: 'j-running', workflow: 'volume-backup', input: { projectId: p, jobId: 'j-running' }, startedAt: now() });
    // a backup whose job was created but whose execution never started
    await stores.volumes.create(volume(p, 'v-init'));
    await stores.volumes.lock(p, 'v-init', 'j-init', 'backing-up', ['available']);
    await stores.jobs.create(job(p, 'j-init', { entities: { backup_id: 'b-init', volume_id: 'v-init' } }));
    // a volume locked by a job that was never written
    await stores.volumes.create(volume(p, 'v-orphan'));
    await stores.volumes.lock(p, 'v-orphan', 'j-ghost', 'restoring', ['available']);
    // an execution record of a job that had already ended
    await stores.jobs.create(job(p, 'j-done', { status: 'SUCCESS' }));
    await executions.begin({ name: 'j-done', workflow: 'volume-backup', input: { projectId: p, jobId: 'j-done' }, startedAt: now() });

    const resumed: Array<[WorkflowName, string]> = [];
    const report = await recoverInterrupted({
      executions,
      jobs: stores.jobs,
      volumes: stores.volumes,
      tasks: env.runtime.taskDeps(),
      resume: async (workflow, name) => {
        resumed.push([workflow, name]);
      },
    });

    expect(resumed).toEqual([['volume-backup', 'j-running']]);
    expect(report.resumed).toEqual(['j-running']);
    expect(report.failed).toContain('j-init');
    expect(report.released).toContain('v-orphan');

    const failed = (await stores.jobs.get(p, 'j-init'))!;
    expect(failed.status).toBe('FAIL');
    expect(failed.failReason).toMatch(/stopped before this job started/);
    expect((await stores.volumes.get(p, 'v-init'))!).toMatchObject({ status: 'available' });
    expect((await stores.volumes.get(p, 'v-init'))!.lockJobId).toBeUndefined();
    expect((await stores.volumes.get(p, 'v-orphan'))!.lockJobId).toBeUndefined();
    expect((await stores.volumes.get(p, 'v-running'))!.lockJobId).toBe('j-running'); // still its job's
    expect((await executions.listRunning()).map((e) => e.name)).toEqual(['j-running']);
    expect((await stores.jobs.listUnfinished()).filter((j) => j.projectId === p).map((j) => j.jobId)).toEqual(['j-running']);
  });
});

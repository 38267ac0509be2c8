// How a long operation starts: an INIT job, then the workflow execution that does the work (its steps end
// the job). The caller has already taken what the job needs (a volume lock, a backup status); when the job
// or the execution cannot be made, `undo` gives it back, so a failed request leaves nothing held.
import type { JobStore, JobType } from '../catalog/jobs.ts';
import type { WorkflowName, WorkflowStarter } from '../workflows/registry.ts';
import { ServiceError } from './errors.ts';

export interface JobLaunch {
  projectId: string;
  jobId: string;
  jobType: JobType;
  /** VBS `entities` of the job: backup_id, volume_id, ... */
  entities: Record<string, string>;
  workflow: WorkflowName;
  input: unknown;
  /** Puts back what the caller changed for this job; its own failure is ignored. */
  undo: () => Promise<unknown>;
}

export class JobLauncher {
  private readonly jobs: JobStore;
  private readonly workflows: WorkflowStarter;

  constructor(jobs: JobStore, workflows: WorkflowStarter) {
    this.jobs = jobs;
    this.workflows = workflows;
  }

  /**
   * Creates the job and starts its workflow, named after the job (so a retried start cannot run twice).
   * When the workflow cannot start, the job ends FAIL and the caller gets VolumeBackup.0014.
   */
  async launch(launch: JobLaunch): Promise<void> {
    const { projectId, jobId, workflow } = launch;
    const now = new Date().toISOString();
    try {
      await this.jobs.create({ projectId, jobId, jobType: launch.jobType, status: 'INIT', entities: launch.entities, bytesDone: 0, bytesTotal: 0, createdAt: now });
    } catch (err) {
      await Promise.allSettled([launch.undo()]);
      throw err;
    }
    let executionArn: string;
    try {
      ({ executionArn } = await this.workflows.start(workflow, jobId, launch.input));
    } catch (err) {
      const failReason = `could not start the ${workflow} workflow: ${err instanceof Error ? err.message : String(err)}`;
      await Promise.allSettled([
        launch.undo(),
        this.jobs.update(projectId, jobId, { status: 'FAIL', endTime: new Date().toISOString(), errorCode: 'VolumeBackup.0014', failReason }),
      ]);
      throw new ServiceError(500, 'VolumeBackup.0014', 'the job could not be submitted; try again');
    }
    await this.jobs.update(projectId, jobId, { executionArn });
  }
}

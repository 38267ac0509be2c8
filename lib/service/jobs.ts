// Jobs as the VBS job API shows them; the workflows' steps move them along. A running job can be cancelled.
// A server backup or restore job has one sub-job per disk (JobRecord.parentJobId); only the server job is cancelled.
import type { JobRecord, JobStore } from '../catalog/jobs.ts';
import type { WorkflowStarter } from '../workflows/registry.ts';
import { conflict, jobNotFound } from './errors.ts';
import { isId } from './ids.ts';

/** What a cancelled job's failure path is told: its fail_reason becomes the cause. */
export const CANCELLED = { error: 'OpenVBS.Cancelled', cause: 'cancelled' } as const;

export class JobService {
  private readonly jobs: JobStore;
  private readonly workflows: WorkflowStarter;

  constructor(jobs: JobStore, workflows: WorkflowStarter) {
    this.jobs = jobs;
    this.workflows = workflows;
  }

  /** The job; common.0011 (as VBS answers) when the project has no such job. */
  async get(projectId: string, jobId: string): Promise<JobRecord> {
    const job = isId(projectId) && isId(jobId) ? await this.jobs.get(projectId, jobId) : undefined;
    if (!job) throw jobNotFound(jobId);
    return job;
  }

  /** The disks' jobs of a server backup or restore job, in the order they were created (none for other jobs). */
  async subJobs(projectId: string, jobId: string): Promise<JobRecord[]> {
    return isId(projectId) && isId(jobId) ? this.jobs.listSubJobs(projectId, jobId) : [];
  }

  /**
   * Stops the job's workflow; its failure path ends the job FAIL with fail_reason "cancelled", leaves nothing
   * half-written marked available, and releases the volume. Locally that is done when this returns; on AWS
   * shortly after (the execution-failed rule runs it).
   */
  async cancel(projectId: string, jobId: string): Promise<JobRecord> {
    const job = await this.get(projectId, jobId);
    if (job.parentJobId) throw conflict('OpenVBS.1005', `job ${jobId} is one disk of server job ${job.parentJobId}; cancel that job (it stops every disk)`);
    if (job.status === 'SUCCESS' || job.status === 'FAIL') throw conflict('OpenVBS.1005', `job ${jobId} has ended (${job.status}); there is nothing to cancel`);
    if (!job.executionArn) throw conflict('OpenVBS.1005', `job ${jobId} has not started its workflow yet; try again in a moment`);
    await this.workflows.stop(job.executionArn, CANCELLED);
    return this.get(projectId, jobId);
  }
}

// Jobs as the VBS job API shows them; the workflows' steps move them along.
import type { JobRecord, JobStore } from '../catalog/jobs.ts';
import { jobNotFound } from './errors.ts';
import { isId } from './ids.ts';

export class JobService {
  private readonly jobs: JobStore;

  constructor(jobs: JobStore) {
    this.jobs = jobs;
  }

  /** The job; common.0011 (as VBS answers) when the project has no such job. */
  async get(projectId: string, jobId: string): Promise<JobRecord> {
    const job = isId(projectId) && isId(jobId) ? await this.jobs.get(projectId, jobId) : undefined;
    if (!job) throw jobNotFound(jobId);
    return job;
  }
}

// Jobs: long operations (backup, restore, delete) as the VBS job API shows them. While a job is open (INIT
// or RUNNING) it is also in the index of open jobs, so a restarted runtime finds every unfinished job.
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Table } from './table.ts';
import { CATALOG_GSI1, OPEN_JOBS_KEY, fromItem, jobSortKey, openJobSortKey, projectKey } from './tables.ts';

export type JobStatus = 'INIT' | 'RUNNING' | 'SUCCESS' | 'FAIL';
export type JobType =
  | 'bksCreateBackup'
  | 'bksRestoreBackup'
  | 'bksDeleteBackup'
  | 'bksCreateServerBackup'
  | 'bksRestoreServerBackup'
  | 'bksDeleteServerBackup';

export interface JobRecord {
  projectId: string;
  jobId: string;
  jobType: JobType;
  status: JobStatus;
  /** VBS `entities`: backup_id, volume_id, ... */
  entities: Record<string, string>;
  /** Work done so far and in all, in bytes of the volume (progress = done / total). */
  bytesDone: number;
  bytesTotal: number;
  createdAt: string;
  beginTime?: string;
  endTime?: string;
  errorCode?: string;
  failReason?: string;
  executionArn?: string;
  /** A disk's job within a server backup or restore: the server job it belongs to (shown in its `sub_jobs`). */
  parentJobId?: string;
}

/** The disks' jobs of a server job among a project's jobs, in the order they were created (the disks' order). */
export function subJobsOf(jobs: readonly JobRecord[], parentJobId: string): JobRecord[] {
  const subJobs = jobs.filter((job) => job.parentJobId === parentJobId);
  return subJobs.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.jobId.localeCompare(b.jobId));
}

export function jobProgress(job: JobRecord): number {
  if (job.status === 'SUCCESS') return 100;
  if (!job.bytesTotal) return 0;
  return Math.min(99, Math.floor((job.bytesDone / job.bytesTotal) * 100));
}

const ENDED: JobStatus[] = ['SUCCESS', 'FAIL'];
const isOpen = (status: JobStatus) => !ENDED.includes(status);

export interface JobStore {
  create(job: JobRecord): Promise<void>;
  get(projectId: string, jobId: string): Promise<JobRecord | undefined>;
  /** Sets fields; a job that already ended (SUCCESS/FAIL) is left alone (false), so retried tasks cannot reopen it. */
  update(projectId: string, jobId: string, patch: Partial<Omit<JobRecord, 'projectId' | 'jobId'>>): Promise<boolean>;
  /** Adds to the progress counter (atomic, so parallel segments can report). */
  addProgress(projectId: string, jobId: string, bytes: number): Promise<void>;
  /** Every job of the project, by job id. */
  list(projectId: string): Promise<JobRecord[]>;
  /** The disks' jobs of a server job, in the order they were created. */
  listSubJobs(projectId: string, parentJobId: string): Promise<JobRecord[]>;
  /** Jobs in INIT or RUNNING across all projects, oldest first: what a restart must resume or end. */
  listUnfinished(): Promise<JobRecord[]>;
}

const jobKey = (projectId: string, jobId: string) => ({ pk: projectKey(projectId), sk: jobSortKey(jobId) });

export class TableJobStore implements JobStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async create(job: JobRecord): Promise<void> {
    const openEntry = isOpen(job.status)
      ? { [CATALOG_GSI1.partitionKey]: OPEN_JOBS_KEY, [CATALOG_GSI1.sortKey]: openJobSortKey(job.createdAt, job.projectId, job.jobId) }
      : {};
    await this.table.put({ ...jobKey(job.projectId, job.jobId), ...openEntry, ...job }, cond.notExists());
  }

  async get(projectId: string, jobId: string): Promise<JobRecord | undefined> {
    const item = await this.table.get(jobKey(projectId, jobId));
    return item ? fromItem<JobRecord>(item) : undefined;
  }

  async update(projectId: string, jobId: string, patch: Partial<Omit<JobRecord, 'projectId' | 'jobId'>>): Promise<boolean> {
    const fields = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    if (!Object.keys(fields).length) return true;
    const ends = patch.status !== undefined && !isOpen(patch.status);
    try {
      await this.table.update(
        jobKey(projectId, jobId),
        { set: fields, ...(ends ? { remove: [CATALOG_GSI1.partitionKey, CATALOG_GSI1.sortKey] } : {}) },
        cond.and(cond.exists(), cond.notIn('status', ENDED)),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async addProgress(projectId: string, jobId: string, bytes: number): Promise<void> {
    await this.table.update(jobKey(projectId, jobId), { add: { bytesDone: bytes } }, cond.exists());
  }

  async list(projectId: string): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: jobSortKey('') } })) out.push(fromItem<JobRecord>(item));
    return out;
  }

  async listSubJobs(projectId: string, parentJobId: string): Promise<JobRecord[]> {
    return subJobsOf(await this.list(projectId), parentJobId);
  }

  async listUnfinished(): Promise<JobRecord[]> {
    const keys: Array<{ projectId: string; jobId: string }> = [];
    for await (const item of queryAll(this.table, { index: 'gsi1', partition: OPEN_JOBS_KEY })) keys.push(fromItem<JobRecord>(item));
    // Index reads may lag the table: read each job again and keep those still open.
    const jobs = await Promise.all(keys.map(({ projectId, jobId }) => this.get(projectId, jobId)));
    return jobs.filter((job): job is JobRecord => job !== undefined && isOpen(job.status));
  }
}

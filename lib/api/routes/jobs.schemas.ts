// Jobs on the wire: the VBS job v1 shape, plus bytes_done / bytes_total for throughput display. A server
// backup or restore job lists each disk's job in `sub_jobs` (the same shape) and its progress is theirs summed.
import { z } from '@hono/zod-openapi';
import { jobProgress } from '../../catalog/jobs.ts';
import type { JobRecord } from '../../catalog/jobs.ts';
import { Timestamp, idParam, vbsTime } from '../schemas.ts';

export const JobParams = z.object({ project_id: idParam('project_id'), job_id: idParam('job_id') });

const jobFields = {
  job_id: z.string(),
  job_type: z.string(),
  status: z.enum(['INIT', 'RUNNING', 'SUCCESS', 'FAIL']),
  begin_time: Timestamp.nullable(),
  end_time: Timestamp.nullable(),
  error_code: z.string().nullable(),
  fail_reason: z.string().nullable(),
  entities: z.record(z.string(), z.string()),
  progress: z.number().int(),
  bytes_done: z.number().int(),
  bytes_total: z.number().int(),
};

export const SubJob = z
  .object({ ...jobFields, sub_jobs: z.array(z.unknown()).openapi({ description: 'Always empty: a disk job has no sub-jobs' }) })
  .openapi('SubJob', { description: 'One disk of a server backup or restore (entities: backup_id, volume_id, checkpoint_id)' });

export const Job = z
  .object({
    ...jobFields,
    sub_jobs: z.array(SubJob).openapi({ description: 'A server backup or restore: one job per disk; empty for other jobs' }),
  })
  .openapi('Job');

type JobView = z.infer<typeof Job>;

function fields(job: JobRecord, bytesDone: number, bytesTotal: number): Omit<JobView, 'sub_jobs'> {
  const begin = job.beginTime ?? job.createdAt;
  return {
    job_id: job.jobId,
    job_type: job.jobType,
    status: job.status,
    begin_time: begin ? vbsTime(begin) : null,
    end_time: job.endTime ? vbsTime(job.endTime) : null,
    error_code: job.errorCode ?? null,
    fail_reason: job.failReason ?? null,
    entities: job.entities ?? {},
    progress: jobProgress({ ...job, bytesDone, bytesTotal }),
    bytes_done: bytesDone,
    bytes_total: bytesTotal,
  };
}

/** The job; with `subJobs` (a server job's disks) its bytes and progress are the disks' summed. */
export function jobView(job: JobRecord, subJobs: readonly JobRecord[] = []): JobView {
  if (!subJobs.length) return { ...fields(job, job.bytesDone ?? 0, job.bytesTotal ?? 0), sub_jobs: [] };
  const done = subJobs.reduce((sum, j) => sum + (j.bytesDone ?? 0), 0);
  const total = subJobs.reduce((sum, j) => sum + (j.bytesTotal ?? 0), 0) || (job.bytesTotal ?? 0);
  return { ...fields(job, Math.min(done, total || done), total), sub_jobs: subJobs.map((sub) => ({ ...fields(sub, sub.bytesDone ?? 0, sub.bytesTotal ?? 0), sub_jobs: [] })) };
}

// Jobs on the wire: the VBS job v1 shape, plus bytes_done / bytes_total for throughput display.
import { z } from '@hono/zod-openapi';
import { jobProgress } from '../../catalog/jobs.ts';
import type { JobRecord } from '../../catalog/jobs.ts';
import { Timestamp, idParam, vbsTime } from '../schemas.ts';

export const JobParams = z.object({ project_id: idParam('project_id'), job_id: idParam('job_id') });

export const Job = z
  .object({
    job_id: z.string(),
    job_type: z.string(),
    status: z.enum(['INIT', 'RUNNING', 'SUCCESS', 'FAIL']),
    begin_time: Timestamp.nullable(),
    end_time: Timestamp.nullable(),
    error_code: z.string().nullable(),
    fail_reason: z.string().nullable(),
    entities: z.record(z.string(), z.string()),
    sub_jobs: z.array(z.unknown()),
    progress: z.number().int(),
    bytes_done: z.number().int(),
    bytes_total: z.number().int(),
  })
  .openapi('Job');

export function jobView(job: JobRecord): z.infer<typeof Job> {
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
    sub_jobs: [],
    progress: jobProgress(job),
    bytes_done: job.bytesDone ?? 0,
    bytes_total: job.bytesTotal ?? 0,
  };
}

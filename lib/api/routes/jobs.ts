// Jobs: GET /v1/{project_id}/jobs/{job_id}, as the VBS job API answers (a server job with its disks' jobs in
// sub_jobs), and our cancel extension.
import { createRoute } from '@hono/zod-openapi';
import type { JobService } from '../../service/jobs.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, errorResponses, json } from '../schemas.ts';
import { Job, JobParams, jobView } from './jobs.schemas.ts';

const jobRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/jobs/{job_id}',
  tags: ['Jobs'],
  summary: 'Job status',
  request: { params: JobParams },
  responses: { 200: json(Job, 'The job'), ...errorResponses },
});

const cancelRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/jobs/{job_id}/cancel',
  tags: ['Jobs'],
  summary: 'Cancel a running job (OpenVBS extension): it ends FAIL with fail_reason "cancelled"',
  request: { params: JobParams },
  responses: {
    200: json(Job, 'The job after the cancel (locally it has ended; on AWS it ends moments later)'),
    ...errorResponses,
    409: json(ErrorResponse, 'The job has ended, has not started its workflow yet, or is one disk of a server job (cancel the server job) (OpenVBS.1005)'),
  },
});

export function jobRoutes(jobs: JobService) {
  const app = createRouter();
  app.openapi(jobRoute, async (c) => {
    const { project_id, job_id } = c.req.valid('param');
    return c.json(jobView(await jobs.get(project_id, job_id), await jobs.subJobs(project_id, job_id)), 200);
  });
  app.openapi(cancelRoute, async (c) => {
    const { project_id, job_id } = c.req.valid('param');
    return c.json(jobView(await jobs.cancel(project_id, job_id), await jobs.subJobs(project_id, job_id)), 200);
  });
  return app;
}

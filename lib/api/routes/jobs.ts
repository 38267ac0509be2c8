// Jobs: GET /v1/{project_id}/jobs/{job_id}, as the VBS job API answers.
import { createRoute } from '@hono/zod-openapi';
import type { JobService } from '../../service/jobs.ts';
import { createRouter } from '../http.ts';
import { errorResponses, json } from '../schemas.ts';
import { Job, JobParams, jobView } from './jobs.schemas.ts';

const jobRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/jobs/{job_id}',
  tags: ['Jobs'],
  summary: 'Job status',
  request: { params: JobParams },
  responses: { 200: json(Job, 'The job'), ...errorResponses },
});

export function jobRoutes(jobs: JobService) {
  const app = createRouter();
  app.openapi(jobRoute, async (c) => {
    const { project_id, job_id } = c.req.valid('param');
    return c.json(jobView(await jobs.get(project_id, job_id)), 200);
  });
  return app;
}

// VBS backup policies: /v2/{project_id}/backuppolicy…, /backuppolicyresources…, the policy tags, and the OpenVBS
// tick (POST /v1/{project_id}/policy-tick: one pass of the scheduler over the project's policies, at a given time).
import { createRoute } from '@hono/zod-openapi';
import type { PolicyService } from '../../service/policies.ts';
import { invalidParam } from '../../service/errors.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, errorResponses, json, jsonBody, vbsTime } from '../schemas.ts';
import {
  AssociateBody,
  DisassociateBody,
  PolicyBody,
  PolicyListResponse,
  PolicyParams,
  PolicyTagParams,
  Policy,
  ProjectTagsResponse,
  ResourceInstancesBody,
  ResourceInstancesResponse,
  ResourcesResponse,
  TagActionBody,
  TagBody,
  TagsResponse,
  TasksQuery,
  TasksResponse,
  TickBody,
  TickResponse,
  policyView,
  resourceInstanceView,
  resourcesView,
  scheduledInput,
  taskView,
} from './policies.schemas.ts';
import type { PolicyBody as PolicyBodyType } from './policies.schemas.ts';

const tags = ['Backup policies'];
const base = '/v2/{project_id}/backuppolicy';
const running = { 409: json(ErrorResponse, 'A run of the policy is still going (AutoBackup.0225)') };

const createPolicy = createRoute({ method: 'post', path: base, tags, summary: 'Create a backup policy', request: { params: ProjectParams, body: jsonBody(PolicyBody) }, responses: { 200: json(Policy, 'The policy'), ...errorResponses } });
const listPolicies = createRoute({ method: 'get', path: base, tags, summary: 'List backup policies', request: { params: ProjectParams }, responses: { 200: json(PolicyListResponse, 'Policies'), ...errorResponses } });
const updatePolicy = createRoute({ method: 'put', path: `${base}/{policy_id}`, tags, summary: 'Update, enable or disable a backup policy', request: { params: PolicyParams, body: jsonBody(PolicyBody) }, responses: { 200: json(Policy, 'The policy'), ...errorResponses } });
const deletePolicy = createRoute({ method: 'delete', path: `${base}/{policy_id}`, tags, summary: 'Delete a backup policy (its backups stay)', request: { params: PolicyParams }, responses: { 204: { description: 'Deleted' }, ...errorResponses } });
const associate = createRoute({ method: 'post', path: '/v2/{project_id}/backuppolicyresources', tags, summary: 'Associate volumes with a policy (a volume in another policy moves)', request: { params: ProjectParams, body: jsonBody(AssociateBody) }, responses: { 200: json(ResourcesResponse, 'Per volume: done or why not'), ...errorResponses } });
const disassociate = createRoute({ method: 'post', path: '/v2/{project_id}/backuppolicyresources/{policy_id}/deleted_resources', tags, summary: 'Disassociate volumes from a policy', request: { params: PolicyParams, body: jsonBody(DisassociateBody) }, responses: { 200: json(ResourcesResponse, 'Per volume: done or why not'), ...errorResponses } });
const resourceInstances = createRoute({ method: 'post', path: `${base}/resource_instances/action`, tags, summary: 'Filter or count policies by tags', request: { params: ProjectParams, body: jsonBody(ResourceInstancesBody) }, responses: { 200: json(ResourceInstancesResponse, 'Policies and their count'), ...errorResponses } });
const execute = createRoute({ method: 'post', path: `${base}/{policy_id}/action`, tags, summary: 'Run the policy now', request: { params: PolicyParams }, responses: { 204: { description: 'Run started' }, ...errorResponses, ...running } });
const tasks = createRoute({ method: 'get', path: `${base}/{policy_id}/backuptasks`, tags, summary: 'Tasks of the policy’s runs (30 days)', request: { params: PolicyParams, query: TasksQuery }, responses: { 200: json(TasksResponse, 'Tasks'), ...errorResponses } });
const projectTags = createRoute({ method: 'get', path: `${base}/tags`, tags, summary: 'Every tag of the project’s policies', request: { params: ProjectParams }, responses: { 200: json(ProjectTagsResponse, 'Tags with their values'), ...errorResponses } });
const policyTags = createRoute({ method: 'get', path: `${base}/{policy_id}/tags`, tags, summary: 'Tags of a policy', request: { params: PolicyParams }, responses: { 200: json(TagsResponse, 'Tags'), ...errorResponses } });
const addTag = createRoute({ method: 'post', path: `${base}/{policy_id}/tags`, tags, summary: 'Add a tag (or set its value)', request: { params: PolicyParams, body: jsonBody(TagBody) }, responses: { 204: { description: 'Done' }, ...errorResponses } });
const tagAction = createRoute({ method: 'post', path: `${base}/{policy_id}/tags/action`, tags, summary: 'Add, update or remove tags in one request', request: { params: PolicyParams, body: jsonBody(TagActionBody) }, responses: { 204: { description: 'Done' }, ...errorResponses } });
const deleteTag = createRoute({ method: 'delete', path: `${base}/{policy_id}/tags/{key}`, tags, summary: 'Remove a tag', request: { params: PolicyTagParams }, responses: { 204: { description: 'Removed' }, ...errorResponses } });
const tick = createRoute({
  method: 'post',
  path: '/v1/{project_id}/policy-tick',
  tags,
  summary: 'OpenVBS: one scheduler pass over the project’s policies, now or at a given time (admin)',
  request: { params: ProjectParams, body: jsonBody(TickBody, false) },
  responses: { 200: json(TickResponse, 'What the pass did'), ...errorResponses },
});
function input(body: PolicyBodyType) {
  const scheduled = scheduledInput(body.scheduled_policy);
  return {
    ...(body.backup_policy_name !== undefined ? { name: body.backup_policy_name } : {}),
    ...(scheduled ? { scheduled } : {}),
    ...(body.time_zone !== undefined ? { timeZone: body.time_zone } : {}),
    ...(body.tags !== undefined ? { tags: body.tags } : {}),
  };
}

const filterOf = (entries: Array<{ key: string; values: string[] }> | undefined) => entries ?? [];

export function policyRoutes(policies: PolicyService) {
  const app = createRouter();

  app.openapi(createPolicy, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json(policyView(await policies.create(project_id, input(c.req.valid('json')))), 200);
  });

  app.openapi(listPolicies, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ backup_policies: (await policies.list(project_id)).map(policyView) }, 200);
  });

  // Literal paths before `{policy_id}` ones: the first matching route answers.
  app.openapi(projectTags, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ tags: await policies.projectTags(project_id) }, 200);
  });

  app.openapi(resourceInstances, async (c) => {
    const { project_id } = c.req.valid('param');
    const body = c.req.valid('json');
    const { total, policies: selected } = await policies.filterByTags(project_id, {
      tags: filterOf(body.tags),
      tagsAny: filterOf(body.tags_any),
      notTags: filterOf(body.not_tags),
      notTagsAny: filterOf(body.not_tags_any),
      ...(body.limit !== undefined ? { limit: body.limit } : {}),
      ...(body.offset !== undefined ? { offset: body.offset } : {}),
    });
    if (body.action === 'count') return c.json({ total_count: total }, 200);
    return c.json({ resources: selected.map(resourceInstanceView), total_count: total }, 200);
  });

  app.openapi(updatePolicy, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    return c.json(policyView(await policies.update(project_id, policy_id, input(c.req.valid('json')))), 200);
  });

  app.openapi(deletePolicy, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    await policies.delete(project_id, policy_id);
    return c.body(null, 204);
  });

  app.openapi(associate, async (c) => {
    const { project_id } = c.req.valid('param');
    const body = c.req.valid('json');
    const result = await policies.associate(project_id, body.backup_policy_id, body.resources.map((r) => ({ resourceId: r.resource_id, resourceType: r.resource_type })));
    return c.json(resourcesView(result), 200);
  });

  app.openapi(disassociate, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    const result = await policies.disassociate(project_id, policy_id, c.req.valid('json').resources.map((r) => r.resource_id));
    return c.json(resourcesView(result), 200);
  });

  app.openapi(execute, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    await policies.execute(project_id, policy_id);
    return c.body(null, 204);
  });

  app.openapi(tasks, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    const q = c.req.valid('query');
    const result = await policies.tasks(project_id, policy_id, {
      ...(q.sort_dir !== undefined ? { sortDir: q.sort_dir } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      ...(q.offset !== undefined ? { offset: q.offset } : {}),
      ...(q.marker !== undefined ? { marker: q.marker } : {}),
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.job_id !== undefined ? { jobId: q.job_id } : {}),
    });
    return c.json({ count: result.count, tasks: result.tasks.map(taskView) }, 200);
  });

  app.openapi(policyTags, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    return c.json({ tags: await policies.tags(project_id, policy_id) }, 200);
  });

  app.openapi(addTag, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    await policies.putTags(project_id, policy_id, [c.req.valid('json').tag]);
    return c.body(null, 204);
  });

  app.openapi(tagAction, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    const body = c.req.valid('json');
    if (body.action === 'delete') await policies.deleteTags(project_id, policy_id, body.tags, { strict: false });
    else await policies.putTags(project_id, policy_id, body.tags.map((t) => ({ key: t.key, value: t.value ?? '' })));
    return c.body(null, 204);
  });

  app.openapi(deleteTag, async (c) => {
    const { project_id, policy_id, key } = c.req.valid('param');
    await policies.deleteTags(project_id, policy_id, [{ key }], { strict: true });
    return c.body(null, 204);
  });

  app.openapi(tick, async (c) => {
    const { project_id } = c.req.valid('param');
    const raw = await c.req.text();
    let at: Date | undefined;
    if (raw.trim()) {
      const parsed = TickBody.safeParse(JSON.parse(raw));
      if (!parsed.success) throw invalidParam('"at" must be an ISO 8601 time');
      if (parsed.data.at) at = new Date(parsed.data.at);
    }
    const report = await policies.tick(project_id, at);
    return c.json(
      {
        at: vbsTime(report.at),
        runs: report.runs.map((r) => ({ backup_policy_id: r.policyId, scheduled_at: vbsTime(r.slot), late: r.late, tasks: r.tasks.length })),
        missed: report.missed.map((m) => ({ backup_policy_id: m.policyId, scheduled_at: vbsTime(m.slot) })),
        settled: report.settled.length,
      },
      200,
    );
  });

  return app;
}

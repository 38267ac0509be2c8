// CSBS backup policies: /v1/{project_id}/policies (create, list with paging, show, update, delete) and execute
// now (POST /v1/{project_id}/providers/{provider_id}/checkpoints). Shapes: ./csbs-policies.schemas.ts; the
// rules: ../../service/csbs-policies.ts. The policies' runs are the shared tick's (POST /v1/{project_id}/policy-tick).
import { createRoute } from '@hono/zod-openapi';
import type { CsbsPolicyService } from '../../service/csbs-policies.ts';
import { notFound } from '../../service/errors.ts';
import { CSBS_PROVIDER_ID } from '../../service/server-backups.ts';
import { baseUrlOf, createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import {
  CsbsPolicyBody,
  CsbsPolicyListResponse,
  CsbsPolicyParams,
  CsbsPolicyResponse,
  ExecuteBody,
  ExecuteResponse,
  ListPoliciesQuery,
  ProviderParams,
  executeView,
  policyInput,
  policyView,
} from './csbs-policies.schemas.ts';

const tags = ['Server backup policies (CSBS)'];
const base = '/v1/{project_id}/policies';
const invalid = { 400: json(ErrorResponse, 'A field out of its range, an RRULE refused (not DAILY/WEEKLY, or more often than hourly), no retention, an unknown operation id (OpenVBS.1801), bad tags (OpenVBS.1004)') };
const taken = { 409: json(ErrorResponse, 'A server named is already in another policy (OpenVBS.1804)') };

const createPolicy = createRoute({ method: 'post', path: base, tags, summary: 'Create a server backup policy', request: { params: ProjectParams, body: jsonBody(CsbsPolicyBody) }, responses: { 200: json(CsbsPolicyResponse, 'The policy'), ...errorResponses, ...invalid, ...taken } });
const listPolicies = createRoute({
  method: 'get',
  path: base,
  tags,
  summary: 'List server backup policies (newest first unless sorted otherwise)',
  request: { params: ProjectParams, query: ListPoliciesQuery },
  responses: { 200: json(CsbsPolicyListResponse, 'Policies; policies_links has the next page when there is one'), ...errorResponses },
});
const showPolicy = createRoute({ method: 'get', path: `${base}/{policy_id}`, tags, summary: 'Show a server backup policy', request: { params: CsbsPolicyParams }, responses: { 200: json(CsbsPolicyResponse, 'The policy'), ...errorResponses } });
const updatePolicy = createRoute({
  method: 'put',
  path: `${base}/{policy_id}`,
  tags,
  summary: 'Update a server backup policy (operations by id; resources replaced as a whole)',
  request: { params: CsbsPolicyParams, body: jsonBody(CsbsPolicyBody) },
  responses: { 200: json(CsbsPolicyResponse, 'The policy'), ...errorResponses, ...invalid, ...taken },
});
const deletePolicy = createRoute({ method: 'delete', path: `${base}/{policy_id}`, tags, summary: 'Delete a server backup policy (its backups stay)', request: { params: CsbsPolicyParams }, responses: { 200: { description: 'Deleted' }, ...errorResponses } });
const executePolicy = createRoute({
  method: 'post',
  path: '/v1/{project_id}/providers/{provider_id}/checkpoints',
  tags,
  summary: 'Run a server backup policy now: a server backup of each of its servers',
  request: { params: ProviderParams, body: jsonBody(ExecuteBody) },
  responses: {
    200: json(ExecuteResponse, 'The run’s first checkpoint, with every checkpoint it started'),
    ...errorResponses,
    400: json(ErrorResponse, 'A server not in the policy, or a policy without servers (OpenVBS.1801)'),
    409: json(ErrorResponse, 'A run of the policy is still going (AutoBackup.0225), or no server could be backed up now (OpenVBS.1805)'),
  },
});

export function csbsPolicyRoutes(policies: CsbsPolicyService, options: { baseUrl?: string } = {}) {
  const app = createRouter();

  app.openapi(createPolicy, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ policy: policyView(await policies.create(project_id, policyInput(c.req.valid('json')))) }, 200);
  });

  app.openapi(listPolicies, async (c) => {
    const { project_id } = c.req.valid('param');
    const q = c.req.valid('query');
    const limit = q.limit ?? 1000;
    const { policies: page, more } = await policies.list(project_id, {
      ...(q.name !== undefined ? { name: q.name } : {}),
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.sort !== undefined ? { sort: q.sort } : {}),
      ...(q.offset !== undefined ? { offset: q.offset } : {}),
      ...(q.marker !== undefined ? { marker: q.marker } : {}),
      limit,
    });
    const body = { policies: page.map(policyView) };
    if (!more || !page.length) return c.json(body, 200);
    const params = new URLSearchParams();
    for (const key of ['name', 'status', 'sort'] as const) {
      const v = q[key];
      if (v !== undefined) params.set(key, v);
    }
    params.set('limit', String(limit));
    params.set('marker', page[page.length - 1]!.policy.policyId);
    return c.json({ ...body, policies_links: [{ href: `${baseUrlOf(c, options.baseUrl)}${c.req.path}?${params}`, rel: 'next' as const }] }, 200);
  });

  app.openapi(showPolicy, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    return c.json({ policy: policyView(await policies.show(project_id, policy_id)) }, 200);
  });

  app.openapi(updatePolicy, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    return c.json({ policy: policyView(await policies.update(project_id, policy_id, policyInput(c.req.valid('json')))) }, 200);
  });

  app.openapi(deletePolicy, async (c) => {
    const { project_id, policy_id } = c.req.valid('param');
    await policies.delete(project_id, policy_id);
    return c.body(null, 200);
  });

  app.openapi(executePolicy, async (c) => {
    const { project_id, provider_id } = c.req.valid('param');
    if (provider_id !== CSBS_PROVIDER_ID) throw notFound(`provider ${provider_id} not found (CSBS is ${CSBS_PROVIDER_ID})`);
    const { checkpoint } = c.req.valid('json');
    const only = (checkpoint.parameters?.resources ?? []).map((r) => (typeof r === 'string' ? r : r.id));
    const { policy, checkpoints } = await policies.execute(project_id, checkpoint.plan_id, only.length ? only : undefined);
    return c.json(executeView(policy, checkpoints), 200);
  });

  return app;
}

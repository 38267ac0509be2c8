// CSBS tags: /v1/{project_id}/csbs_backup/{checkpoint_item_id}/tags… (server backups) and
// /v1/{project_id}/csbs_backup_policy/{policy_id}/tags… (CSBS policies). The same routes, shapes, rules and codes
// as the VBS policy tags (add or set one tag, batch create/update/delete, remove one by key, list one resource's,
// the project's keys with their values, filter and count by tags); the rules are ../../service/resource-tags.ts.
import { createRoute } from '@hono/zod-openapi';
import type { z } from '@hono/zod-openapi';
import type { CheckpointRecord } from '../../catalog/checkpoints.ts';
import type { PolicyRecord } from '../../catalog/policies.ts';
import type { CsbsPolicyService } from '../../service/csbs-policies.ts';
import type { ResourceTags } from '../../service/resource-tags.ts';
import type { ServerBackupService } from '../../service/server-backups.ts';
import { createRouter } from '../http.ts';
import type { ApiRouter } from '../http.ts';
import { ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import {
  CheckpointItemTagParams,
  CheckpointItemTagsParams,
  CsbsPolicyTagParams,
  CsbsPolicyTagsParams,
  ProjectTagsResponse,
  ResourceInstancesBody,
  ResourceInstancesResponse,
  TagActionBody,
  TagBody,
  TagsResponse,
  resourceInstance,
} from './csbs-tags.schemas.ts';

interface TagRoutesSpec<T> {
  /** `/v1/{project_id}/csbs_backup`. */
  base: string;
  /** The path parameter naming one resource. */
  idName: string;
  /** `server backup`, `server backup policy`: for summaries. */
  what: string;
  group: string;
  params: z.ZodObject;
  keyParams: z.ZodObject;
  service: ResourceTags<T>;
  view: (item: T) => { id: string; name: string; tags: Array<{ key: string; value: string }> };
}

const all = (entries: Array<{ key: string; values: string[] }> | undefined) => entries ?? [];

/** The six tag routes of one kind of resource onto `app`; literal paths before `{id}` ones. */
function addTagRoutes<T>(app: ApiRouter, spec: TagRoutesSpec<T>): void {
  const { base, idName, what, service } = spec;
  const tags = [spec.group];
  const one = `${base}/{${idName}}/tags`;
  const routes = {
    projectTags: createRoute({ method: 'get', path: `${base}/tags`, tags, summary: `Every tag of the project’s ${what}s`, request: { params: ProjectParams }, responses: { 200: json(ProjectTagsResponse, 'Tags with their values'), ...errorResponses } }),
    resourceInstances: createRoute({ method: 'post', path: `${base}/resource_instances/action`, tags, summary: `Filter or count ${what}s by tags`, request: { params: ProjectParams, body: jsonBody(ResourceInstancesBody) }, responses: { 200: json(ResourceInstancesResponse, `${what}s and their count`), ...errorResponses } }),
    list: createRoute({ method: 'get', path: one, tags, summary: `Tags of a ${what}`, request: { params: spec.params }, responses: { 200: json(TagsResponse, 'Tags'), ...errorResponses } }),
    add: createRoute({ method: 'post', path: one, tags, summary: 'Add a tag (or set its value)', request: { params: spec.params, body: jsonBody(TagBody) }, responses: { 204: { description: 'Done' }, ...errorResponses } }),
    action: createRoute({ method: 'post', path: `${one}/action`, tags, summary: 'Add, update or remove tags in one request', request: { params: spec.params, body: jsonBody(TagActionBody) }, responses: { 204: { description: 'Done' }, ...errorResponses } }),
    remove: createRoute({ method: 'delete', path: `${one}/{key}`, tags, summary: 'Remove a tag', request: { params: spec.keyParams }, responses: { 204: { description: 'Removed' }, ...errorResponses } }),
  };
  // The params schemas differ per kind; both name the project, the resource (idName) and, for one tag, the key.
  const ids = (param: unknown) => {
    const p = param as Record<string, string>;
    return { projectId: p.project_id!, id: p[idName]!, key: p.key };
  };

  app.openapi(routes.projectTags, async (c) => c.json({ tags: await service.projectTags(c.req.valid('param').project_id) }, 200));

  app.openapi(routes.resourceInstances, async (c) => {
    const body = c.req.valid('json');
    const { total, items } = await service.filter(c.req.valid('param').project_id, {
      tags: all(body.tags),
      tagsAny: all(body.tags_any),
      notTags: all(body.not_tags),
      notTagsAny: all(body.not_tags_any),
      ...(body.limit !== undefined ? { limit: body.limit } : {}),
      ...(body.offset !== undefined ? { offset: body.offset } : {}),
    });
    if (body.action === 'count') return c.json({ total_count: total }, 200);
    return c.json({ resources: items.map((item) => resourceInstance(spec.view(item))), total_count: total }, 200);
  });

  app.openapi(routes.list, async (c) => {
    const { projectId, id } = ids(c.req.valid('param'));
    return c.json({ tags: await service.tags(projectId, id) }, 200);
  });

  app.openapi(routes.add, async (c) => {
    const { projectId, id } = ids(c.req.valid('param'));
    await service.putTags(projectId, id, [c.req.valid('json').tag]);
    return c.body(null, 204);
  });

  app.openapi(routes.action, async (c) => {
    const { projectId, id } = ids(c.req.valid('param'));
    const body = c.req.valid('json');
    if (body.action === 'delete') await service.deleteTags(projectId, id, body.tags, { strict: false });
    else await service.putTags(projectId, id, body.tags.map((t) => ({ key: t.key, value: t.value ?? '' })));
    return c.body(null, 204);
  });

  app.openapi(routes.remove, async (c) => {
    const { projectId, id, key } = ids(c.req.valid('param'));
    await service.deleteTags(projectId, id, [{ key: key ?? '' }], { strict: true });
    return c.body(null, 204);
  });
}

export function csbsTagRoutes(serverBackups: Pick<ServerBackupService, 'tagging'>, csbsPolicies: Pick<CsbsPolicyService, 'tagging'>) {
  const app = createRouter();
  addTagRoutes<CheckpointRecord>(app, {
    base: '/v1/{project_id}/csbs_backup',
    idName: 'checkpoint_item_id',
    what: 'server backup',
    group: 'Server backups (CSBS)',
    params: CheckpointItemTagsParams,
    keyParams: CheckpointItemTagParams,
    service: serverBackups.tagging,
    view: (c) => ({ id: c.itemId, name: c.name, tags: c.tags }),
  });
  addTagRoutes<PolicyRecord>(app, {
    base: '/v1/{project_id}/csbs_backup_policy',
    idName: 'policy_id',
    what: 'server backup policy',
    group: 'Server backup policies (CSBS)',
    params: CsbsPolicyTagsParams,
    keyParams: CsbsPolicyTagParams,
    service: csbsPolicies.tagging,
    view: (p) => ({ id: p.policyId, name: p.name, tags: p.tags }),
  });
  return app;
}

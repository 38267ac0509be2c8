// Server backups: the CSBS v1 routes (check and protect a server, list, show and count checkpoint items,
// delete a checkpoint, restore, quotas). Shapes: ./checkpoints.schemas.ts. Every path under
// /providers/{provider_id} (and a restore's provider_id) must name CSBS's fixed provider, else 404.
// Each backup, restore and deletion is a job of the v1 job API with one sub-job per disk.
import { createRoute } from '@hono/zod-openapi';
import { ServiceError, notFound } from '../../service/errors.ts';
import { CSBS_PROVIDER_ID, SERVER_RESOURCE_TYPE } from '../../service/server-backups.ts';
import type { CheckpointItemsQuery, CheckpointView, ServerBackupService } from '../../service/server-backups.ts';
import { baseUrlOf, createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import {
  CheckpointParams,
  CheckpointResponse,
  CountResponse,
  DeleteResponse,
  ItemFilterQuery,
  ItemListResponse,
  ItemParams,
  ItemResponse,
  ListItemsQuery,
  ProtectBody,
  ProviderParams,
  QuotaResponse,
  ResourceParams,
  ResourcesActionBody,
  ResourcesActionResponse,
  RestoreBody,
  RestoreResponse,
  checkpointView,
  itemView,
  queryTime,
  quotaView,
} from './checkpoints.schemas.ts';

const tags = ['Server backups (CSBS)'];

const protectErrors = {
  400: json(ErrorResponse, 'A bad parameter or body (OpenVBS.0400, VolumeBackup.0002), a name, description or tags the VBS rules refuse (VolumeBackup.0003-0006, OpenVBS.1004), a server without disks or with too many (OpenVBS.1502)'),
  409: json(ErrorResponse, 'The server is in error (OpenVBS.1501), or one of its disks is busy with a job or in error (VolumeBackup.0012)'),
};
const restoreErrors = {
  400: json(ErrorResponse, 'A bad body (VolumeBackup.0002), a target disk that is not the server’s or is used twice (OpenVBS.1504), a target disk smaller than its backup (VolumeBackup.0209)'),
  409: json(ErrorResponse, 'The server backup is not available (VolumeBackup.0089), the server is in error (OpenVBS.1501) or running (OpenVBS.1503: stop it first), or a target disk is busy (VolumeBackup.0012)'),
};

const resourcesActionRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/providers/{provider_id}/resources/action',
  tags,
  summary: 'Check whether servers can be backed up (check_protectable) or restored (check_restorable)',
  request: { params: ProviderParams, body: jsonBody(ResourcesActionBody) },
  responses: { 200: json(ResourcesActionResponse, 'One result per resource asked about'), ...errorResponses },
});

const protectRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/providers/{provider_id}/resources/{resource_id}/action',
  tags,
  summary: 'Back up a server: every disk at one instant (status protecting until the job ends)',
  request: { params: ResourceParams, body: jsonBody(ProtectBody) },
  responses: { 200: json(CheckpointResponse, 'The checkpoint, protecting'), ...errorResponses, ...protectErrors },
});

const listItemsRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/checkpoint_items',
  tags,
  summary: 'List server backups (checkpoint items), newest first unless sorted otherwise',
  request: { params: ProjectParams, query: ListItemsQuery },
  responses: { 200: json(ItemListResponse, 'Checkpoint items; checkpoint_items_links has the next page when there is one'), ...errorResponses },
});

const countItemsRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/checkpoint_items/count',
  tags,
  summary: 'Count server backups matching the filters',
  request: { params: ProjectParams, query: ItemFilterQuery },
  responses: { 200: json(CountResponse, 'How many'), ...errorResponses },
});

const showItemRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/checkpoint_items/{checkpoint_item_id}',
  tags,
  summary: 'Show a server backup (checkpoint item) with each disk’s backup',
  request: { params: ItemParams },
  responses: { 200: json(ItemResponse, 'The checkpoint item'), ...errorResponses },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}',
  tags,
  summary: 'Delete a server backup with its disk backups (as a job)',
  request: { params: CheckpointParams },
  responses: {
    200: json(DeleteResponse, 'Deletion started'),
    ...errorResponses,
    409: json(ErrorResponse, 'The server backup is neither available nor error (OpenVBS.1001)'),
  },
});

const restoreRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/restores',
  tags,
  summary: 'Restore a server backup onto a server (overwrites its disks; as a job with one sub-job per disk)',
  request: { params: ProjectParams, body: jsonBody(RestoreBody) },
  responses: { 200: json(RestoreResponse, 'Restore started'), ...errorResponses, ...restoreErrors },
});

const quotaRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/quotas',
  tags,
  summary: 'Server backup quotas and usage (-1: unlimited)',
  request: { params: ProjectParams },
  responses: { 200: json(QuotaResponse, 'Quotas'), ...errorResponses },
});

function checkProvider(providerId: string): void {
  if (providerId !== CSBS_PROVIDER_ID) throw notFound(`provider ${providerId} not found (CSBS is ${CSBS_PROVIDER_ID})`);
}

/** The service's filter from the query; undefined when nothing can match (another resource type). */
function filterOf(q: ItemFilterQuery): CheckpointItemsQuery | undefined {
  if (q.resource_type !== undefined && q.resource_type !== SERVER_RESOURCE_TYPE) return undefined;
  const start = q.start_time !== undefined ? queryTime(q.start_time) : undefined;
  const end = q.end_time !== undefined ? queryTime(q.end_time) : undefined;
  return {
    ...(q.status !== undefined ? { status: q.status } : {}),
    ...(q.name !== undefined ? { name: q.name } : {}),
    ...(q.resource_id !== undefined ? { resourceId: q.resource_id } : {}),
    ...(q.resource_name !== undefined ? { resourceName: q.resource_name } : {}),
    ...(q.checkpoint_id !== undefined ? { checkpointId: q.checkpoint_id } : {}),
    ...(start !== undefined ? { startTime: start } : {}),
    ...(end !== undefined ? { endTime: end } : {}),
  };
}

const PAGE = 1000;

export function checkpointRoutes(serverBackups: ServerBackupService, options: { baseUrl?: string; availabilityZone?: string } = {}) {
  const app = createRouter();
  const az = options.availabilityZone ?? 'local';
  const render = (view: CheckpointView) => itemView(view, az);

  app.openapi(resourcesActionRoute, async (c) => {
    const { project_id, provider_id } = c.req.valid('param');
    checkProvider(provider_id);
    const body = c.req.valid('json');
    if ('check_protectable' in body) {
      const protectable = [];
      for (const r of body.check_protectable) {
        const refusal =
          r.resource_type !== SERVER_RESOURCE_TYPE
            ? { code: 'OpenVBS.0400', message: `resource_type must be ${SERVER_RESOURCE_TYPE}` }
            : await serverBackups.protectRefusal(project_id, r.resource_id);
        protectable.push({ result: !refusal, resource_type: r.resource_type, resource_id: r.resource_id, ...(refusal ? { error_code: refusal.code, error_msg: refusal.message } : {}) });
      }
      return c.json({ protectable }, 200);
    }
    const restorable = [];
    for (const r of body.check_restorable) {
      const target = r.target;
      let refusal: { code: string; message: string } | undefined;
      if (target.resource_type !== SERVER_RESOURCE_TYPE) {
        refusal = { code: 'OpenVBS.0400', message: `resource_type must be ${SERVER_RESOURCE_TYPE}` };
      } else {
        try {
          const { checkpoint } = await serverBackups.item(project_id, r.checkpoint_item_id);
          refusal = await serverBackups.restoreRefusal(project_id, {
            checkpointId: checkpoint.checkpointId,
            itemId: r.checkpoint_item_id,
            serverId: target.resource_id,
            ...(target.volumes ? { volumes: target.volumes.map((v) => ({ backupId: v.backup_id, volumeId: v.volume_id })) } : {}),
            powerOn: false,
          });
        } catch (err) {
          if (!(err instanceof ServiceError)) throw err;
          refusal = { code: err.code, message: err.message };
        }
      }
      restorable.push({
        result: !refusal,
        resource_type: target.resource_type,
        resource_id: target.resource_id,
        checkpoint_item_id: r.checkpoint_item_id,
        ...(refusal ? { error_code: refusal.code, error_msg: refusal.message } : {}),
      });
    }
    return c.json({ restorable }, 200);
  });

  app.openapi(protectRoute, async (c) => {
    const { project_id, provider_id, resource_id } = c.req.valid('param');
    checkProvider(provider_id);
    const { protect } = c.req.valid('json');
    if (protect.resource_type != null && protect.resource_type !== SERVER_RESOURCE_TYPE) {
      throw new ServiceError(400, 'OpenVBS.0400', `resource_type must be ${SERVER_RESOURCE_TYPE}`);
    }
    const checkpoint = await serverBackups.protect(project_id, resource_id, {
      ...(protect.backup_name != null ? { name: protect.backup_name } : {}),
      ...(protect.description != null ? { description: protect.description } : {}),
      ...(protect.incremental != null ? { incremental: protect.incremental } : {}),
      ...(protect.tags ? { tags: protect.tags } : {}),
    });
    return c.json(checkpointView(checkpoint), 200);
  });

  // `count` before `{checkpoint_item_id}`: the first matching route answers.
  app.openapi(countItemsRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const filter = filterOf(c.req.valid('query'));
    if (!filter) return c.json({ count: 0 }, 200);
    const { total } = await serverBackups.items(project_id, { ...filter, limit: 1 });
    return c.json({ count: total }, 200);
  });

  app.openapi(listItemsRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const query = c.req.valid('query');
    const filter = filterOf(query);
    if (!filter) return c.json({ checkpoint_items: [] }, 200);
    const limit = query.limit ?? PAGE;
    // one more than the page: whether a next page exists
    const { items } = await serverBackups.items(project_id, {
      ...filter,
      ...(query.sort !== undefined ? { sort: query.sort } : {}),
      ...(query.offset !== undefined ? { offset: query.offset } : {}),
      ...(query.marker !== undefined ? { marker: query.marker } : {}),
      limit: limit + 1,
    });
    const page = items.slice(0, limit);
    if (items.length <= limit) return c.json({ checkpoint_items: page.map(render) }, 200);
    const params = new URLSearchParams();
    for (const key of ['status', 'name', 'resource_id', 'resource_name', 'resource_type', 'checkpoint_id', 'start_time', 'end_time', 'sort'] as const) {
      const v = query[key];
      if (v !== undefined) params.set(key, v);
    }
    params.set('limit', String(limit));
    params.set('marker', page[page.length - 1]!.checkpoint.itemId);
    return c.json({ checkpoint_items: page.map(render), checkpoint_items_links: [{ href: `${baseUrlOf(c, options.baseUrl)}${c.req.path}?${params}`, rel: 'next' as const }] }, 200);
  });

  app.openapi(showItemRoute, async (c) => {
    const { project_id, checkpoint_item_id } = c.req.valid('param');
    return c.json({ checkpoint_item: render(await serverBackups.item(project_id, checkpoint_item_id)) }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const { project_id, provider_id, checkpoint_id } = c.req.valid('param');
    checkProvider(provider_id);
    const { jobId } = await serverBackups.delete(project_id, checkpoint_id);
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(restoreRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { restore } = c.req.valid('json');
    checkProvider(restore.provider_id);
    const p = restore.parameters ?? {};
    const volumes = p.targets?.volumes ?? undefined;
    const powerOn = p.power_on ?? true;
    const { jobId, checkpoint } = await serverBackups.restore(project_id, {
      checkpointId: restore.checkpoint_id,
      ...(p.checkpoint_item_id != null ? { itemId: p.checkpoint_item_id } : {}),
      ...(p.targets?.server_id != null ? { serverId: p.targets.server_id } : {}),
      ...(volumes ? { volumes: volumes.map((v) => ({ backupId: v.backup_id, volumeId: v.volume_id })) } : {}),
      powerOn,
    });
    const serverId = p.targets?.server_id ?? checkpoint.serverId;
    return c.json(
      {
        restore: {
          id: jobId,
          project_id,
          provider_id: CSBS_PROVIDER_ID,
          checkpoint_id: checkpoint.checkpointId,
          restore_target: restore.restore_target ?? null,
          parameters: {
            checkpoint_item_id: checkpoint.itemId,
            power_on: powerOn,
            targets: { server_id: serverId, ...(volumes ? { volumes: volumes.map((v) => ({ backup_id: v.backup_id, volume_id: v.volume_id })) } : {}) },
          },
          status: 'in_progress' as const,
          resources_status: { [`${SERVER_RESOURCE_TYPE}#${serverId}`]: 'restoring' },
          resources_reason: {},
        },
      },
      200,
    );
  });

  app.openapi(quotaRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json(quotaView(await serverBackups.quotas(project_id)), 200);
  });
  return app;
}

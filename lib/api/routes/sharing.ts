// Backup sharing: the VBS `os-vendor-backup-sharing` routes (share, list with details, count, show, remove).
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ShareFilter, ShareListQuery as ServiceListQuery, SharingService } from '../../service/sharing.ts';
import { baseUrlOf, createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import {
  CreateShareBody,
  CreateShareResponse,
  DeleteShareQuery,
  ShareCountResponse,
  ShareFilterQuery,
  ShareListQuery,
  ShareListResponse,
  ShareParams,
  ShareResponse,
  shareDetailView,
  shareView,
} from './sharing.schemas.ts';

const tags = ['Backup sharing'];
const PATH = '/v2/{project_id}/os-vendor-backup-sharing';
const receiverRefused = { 403: json(ErrorResponse, 'The backup is another project’s, shared with this one: only its owner can do this (OpenVBS.1903)') };

const createShareRoute = createRoute({
  method: 'post',
  path: PATH,
  tags,
  summary: 'Share an available backup with other projects (one share per project, all or none)',
  request: { params: ProjectParams, body: jsonBody(CreateShareBody) },
  responses: {
    200: json(CreateShareResponse, 'The shares made'),
    ...errorResponses,
    400: json(ErrorResponse, 'A bad body (VolumeBackup.0002), or to_project_ids empty, too long, malformed or naming this project (OpenVBS.1901)'),
    ...receiverRefused,
    409: json(ErrorResponse, 'The backup is not available or belongs to a server backup (OpenVBS.1902), or is shared with one of the projects already (OpenVBS.1905)'),
  },
});

const listSharesRoute = createRoute({
  method: 'get',
  path: `${PATH}/detail`,
  tags,
  summary: 'List the shares this project made (or, with share_to_me=true, received), each with its backup',
  request: { params: ProjectParams, query: ShareListQuery },
  responses: { 200: json(ShareListResponse, 'Shares'), ...errorResponses },
});

const countSharesRoute = createRoute({
  method: 'get',
  path: `${PATH}/count`,
  tags,
  summary: 'Count the shares the list would show with these filters',
  request: { params: ProjectParams, query: ShareFilterQuery },
  responses: { 200: json(ShareCountResponse, 'How many'), ...errorResponses },
});

const showShareRoute = createRoute({
  method: 'get',
  path: `${PATH}/{share_id}`,
  tags,
  summary: 'Show a share this project made or received',
  request: { params: ShareParams },
  responses: { 200: json(ShareResponse, 'The share'), ...errorResponses },
});

const deleteShareRoute = createRoute({
  method: 'delete',
  path: `${PATH}/{share_id}`,
  tags,
  summary: 'Remove a share (with is_backup_id=true: every share of the backup); the receiver no longer sees the backup',
  request: { params: ShareParams, query: DeleteShareQuery },
  responses: { 200: { description: 'Removed' }, ...errorResponses, ...receiverRefused },
});

function serviceFilter(query: ShareFilterQuery): ShareFilter {
  const az = query.availability_zone ?? query.avalilability_zone;
  return {
    ...(query.share_to_me !== undefined ? { shareToMe: query.share_to_me } : {}),
    ...(query.backup_id !== undefined ? { backupId: query.backup_id } : {}),
    ...(query.from_project_id !== undefined ? { fromProjectId: query.from_project_id } : {}),
    ...(query.to_project_id !== undefined ? { toProjectId: query.to_project_id } : {}),
    ...(query.volume_id !== undefined ? { volumeId: query.volume_id } : {}),
    ...(query.name !== undefined ? { name: query.name } : {}),
    ...(query.status !== undefined ? { status: query.status } : {}),
    ...(az !== undefined ? { availabilityZone: az } : {}),
  };
}

function serviceListQuery(query: ShareListQuery): ServiceListQuery {
  return {
    ...serviceFilter(query),
    ...(query.sort_key !== undefined ? { sortKey: query.sort_key } : {}),
    ...(query.sort_dir !== undefined ? { sortDir: query.sort_dir } : {}),
    ...(query.limit !== undefined ? { limit: query.limit } : {}),
    ...(query.offset !== undefined ? { offset: query.offset } : {}),
    ...(query.marker !== undefined ? { marker: query.marker } : {}),
  };
}

export function sharingRoutes(sharing: SharingService, options: { baseUrl?: string } = {}) {
  const app = createRouter();
  const base = (c: Context) => baseUrlOf(c, options.baseUrl);

  app.openapi(createShareRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { shared } = c.req.valid('json');
    const made = await sharing.create(project_id, { backupId: shared.backup_id, toProjectIds: shared.to_project_ids });
    return c.json({ shared: made.map(shareView) }, 200);
  });

  // `detail` and `count` before `{share_id}`: the first matching route answers.
  app.openapi(listSharesRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const query = c.req.valid('query');
    const page = await sharing.list(project_id, serviceListQuery(query));
    const shared = page.shares.map((d) => shareDetailView(d, base(c), sharing.availabilityZone));
    if (!page.nextMarker) return c.json({ shared }, 200);
    // The next page: the same query, this page's limit and the next marker.
    const params = new URLSearchParams(new URL(c.req.url).search);
    params.delete('offset');
    params.set('limit', String(page.limit));
    params.set('marker', page.nextMarker);
    return c.json({ shared, shared_links: [{ href: `${base(c)}${c.req.path}?${params}`, rel: 'next' }] }, 200);
  });

  app.openapi(countSharesRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ count: await sharing.count(project_id, serviceFilter(c.req.valid('query'))) }, 200);
  });

  app.openapi(showShareRoute, async (c) => {
    const { project_id, share_id } = c.req.valid('param');
    return c.json({ shared: shareDetailView(await sharing.get(project_id, share_id), base(c), sharing.availabilityZone) }, 200);
  });

  app.openapi(deleteShareRoute, async (c) => {
    const { project_id, share_id } = c.req.valid('param');
    const { is_backup_id } = c.req.valid('query');
    await sharing.delete(project_id, share_id, { isBackupId: is_backup_id === true });
    return c.body(null, 200);
  });

  return app;
}

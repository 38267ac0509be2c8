// Backups: the VBS v2 backup routes, native (`/backups`) and job-based (`/cloudbackups`).
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { BackupService, CreateBackupRequest, ListBackupsQuery as ServiceListQuery } from '../../service/backups.ts';
import { ServiceError, backupItemNotFound, invalidParam } from '../../service/errors.ts';
import { baseUrlOf, createRouter } from '../http.ts';
import { ErrorResponse, ItemNotFoundResponse, ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import {
  BackupDetailListResponse,
  BackupListResponse,
  BackupParams,
  BackupResponse,
  CreateBackupBody,
  JobIdResponse,
  ListBackupsQuery,
  NativeBackupCreatedResponse,
  NativeCreateBackupBody,
  NativeRestoreResponse,
  QuotaResponse,
  RestoreBody,
  backupStartedView,
  backupSummaryView,
  backupView,
  parseTagQuery,
  quotaView,
} from './backups.schemas.ts';

const tags = ['Backups'];

const volumeBusy = { 409: json(ErrorResponse, 'The volume is not available or in-use, or a job holds it (VolumeBackup.0012)') };
const sharedRefusal = (what: string) => ({ 403: json(ErrorResponse, `The backup is another project’s, shared with this one: only its owner can ${what} (OpenVBS.1903)`) });
const restoreConflict = {
  409: json(ErrorResponse, 'The backup is not available (VolumeBackup.0089), or the target is in error (VolumeBackup.0205), in-use or held by a job (VolumeBackup.0012)'),
  ...sharedRefusal('restore it onto an existing volume'),
};
const deleteConflict = {
  409: json(ErrorResponse, 'The backup is neither available nor error (OpenVBS.1001), belongs to a server backup (OpenVBS.1002), or is shared with other projects (OpenVBS.1904)'),
  ...sharedRefusal('delete it'),
};

const createBackupRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/cloudbackups',
  tags,
  summary: 'Create a backup of a volume (job)',
  request: { params: ProjectParams, body: jsonBody(CreateBackupBody) },
  responses: { 200: json(JobIdResponse, 'Job started'), ...errorResponses, ...volumeBusy },
});

const nativeCreateRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/backups',
  tags,
  summary: 'Create a backup of a volume (native; the same job as cloudbackups)',
  request: { params: ProjectParams, body: jsonBody(NativeCreateBackupBody) },
  responses: { 202: json(NativeBackupCreatedResponse, 'Backup started'), ...errorResponses, ...volumeBusy },
});

const quotaRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/cloudbackups/quota',
  tags,
  summary: 'Backup quotas and usage',
  request: { params: ProjectParams },
  responses: { 200: json(QuotaResponse, 'Quotas'), ...errorResponses },
});

const deleteBackupJobRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/cloudbackups/{backup_id}',
  tags,
  summary: 'Delete a backup (job)',
  request: { params: BackupParams },
  responses: { 200: json(JobIdResponse, 'Job started'), ...errorResponses, ...deleteConflict },
});

const restoreJobRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/cloudbackups/{backup_id}/restore',
  tags,
  summary: 'Restore a backup onto a volume (job)',
  request: { params: BackupParams, body: jsonBody(RestoreBody) },
  responses: { 200: json(JobIdResponse, 'Job started'), ...errorResponses, ...restoreConflict },
});

const nativeRestoreRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/backups/{backup_id}/restore',
  tags,
  summary: 'Restore a backup onto a volume (native)',
  request: { params: BackupParams, body: jsonBody(RestoreBody) },
  responses: { 202: json(NativeRestoreResponse, 'Restore started'), ...errorResponses, ...restoreConflict },
});

const listRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/backups',
  tags,
  summary: 'List backups',
  request: { params: ProjectParams, query: ListBackupsQuery },
  responses: { 200: json(BackupListResponse, 'Backups'), ...errorResponses },
});

const listDetailRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/backups/detail',
  tags,
  summary: 'List backups with details',
  request: { params: ProjectParams, query: ListBackupsQuery },
  responses: { 200: json(BackupDetailListResponse, 'Backups'), ...errorResponses },
});

const showRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/backups/{backup_id}',
  tags,
  summary: 'Show a backup',
  request: { params: BackupParams },
  responses: { 200: json(BackupResponse, 'The backup'), ...errorResponses, 404: json(ItemNotFoundResponse, 'No such backup (also: another project’s)') },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v2/{project_id}/backups/{backup_id}',
  tags,
  summary: 'Delete a backup',
  request: { params: BackupParams },
  responses: { 202: { description: 'Deletion started' }, ...errorResponses, ...deleteConflict },
});

function serviceQuery(query: ListBackupsQuery): ServiceListQuery {
  const tags = parseTagQuery(query.tags);
  if (!tags) throw invalidParam('tags: each tag is key=value or key, with a key');
  return {
    ...(tags.length ? { tags } : {}),
    ...(query.name !== undefined ? { name: query.name } : {}),
    ...(query.status !== undefined ? { status: query.status } : {}),
    ...(query.volume_id !== undefined ? { volumeId: query.volume_id } : {}),
    ...(query.offset !== undefined ? { offset: query.offset } : {}),
    ...(query.limit !== undefined ? { limit: query.limit } : {}),
    ...(query.marker !== undefined ? { marker: query.marker } : {}),
    ...(query.sort_key !== undefined ? { sortKey: query.sort_key } : {}),
    ...(query.sort_dir !== undefined ? { sortDir: query.sort_dir } : {}),
  };
}

export function backupRoutes(backups: BackupService, options: { baseUrl?: string } = {}) {
  const app = createRouter();
  const base = (c: Context) => baseUrlOf(c, options.baseUrl);

  /** One page of backups, and the link to the next page (the same filters, the next marker). */
  const listPage = async (c: Context, projectId: string, query: ListBackupsQuery) => {
    const page = await backups.list(projectId, serviceQuery(query));
    if (!page.nextMarker) return { page };
    const params = new URLSearchParams();
    for (const key of ['name', 'status', 'volume_id', 'sort_key', 'sort_dir'] as const) {
      const v = query[key];
      if (v !== undefined) params.set(key, String(v));
    }
    for (const t of query.tags === undefined ? [] : Array.isArray(query.tags) ? query.tags : [query.tags]) params.append('tags', t);
    params.set('limit', String(page.limit));
    params.set('marker', page.nextMarker);
    return { page, links: [{ href: `${base(c)}${c.req.path}?${params}`, rel: 'next' }] };
  };

  app.openapi(createBackupRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { backup } = c.req.valid('json');
    const full = backup.extend_param?.FullBackup;
    const { jobId } = await backups.create(project_id, {
      volumeId: backup.volume_id,
      name: backup.name,
      ...(backup.description != null ? { description: backup.description } : {}),
      ...(backup.snapshot_id != null ? { snapshotId: backup.snapshot_id } : {}),
      ...(backup.tags ? { tags: backup.tags } : {}),
      forceFull: full === true || (typeof full === 'string' && full.toLowerCase() === 'true'),
    });
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(nativeCreateRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { backup } = c.req.valid('json');
    const req: CreateBackupRequest = {
      volumeId: backup.volume_id,
      ...(backup.name != null ? { name: backup.name } : {}),
      ...(backup.description != null ? { description: backup.description } : {}),
      forceFull: backup.incremental === false,
    };
    const started = await backups.create(project_id, req);
    return c.json(backupStartedView(project_id, started, base(c)), 202);
  });

  app.openapi(quotaRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json(quotaView(await backups.quota(project_id)), 200);
  });

  app.openapi(deleteBackupJobRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const { jobId } = await backups.delete(project_id, backup_id);
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(restoreJobRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const { restore } = c.req.valid('json');
    const { jobId } = await backups.restore(project_id, backup_id, restore.volume_id);
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(nativeRestoreRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const { restore } = c.req.valid('json');
    const res = await backups.restore(project_id, backup_id, restore.volume_id);
    return c.json({ restore: { backup_id: res.backupId, volume_id: res.volumeId, volume_name: res.volumeName } }, 202);
  });

  // `detail` before `{backup_id}`: the first matching route answers.
  app.openapi(listDetailRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { page, links } = await listPage(c, project_id, c.req.valid('query'));
    const items = page.backups.map((b) => backupView(b, base(c), backups.availabilityZone));
    return c.json({ backups: items, ...(links ? { backups_links: links } : {}) }, 200);
  });

  app.openapi(listRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { page, links } = await listPage(c, project_id, c.req.valid('query'));
    const items = page.backups.map((b) => backupSummaryView(b, base(c)));
    return c.json({ backups: items, ...(links ? { backups_links: links } : {}) }, 200);
  });

  app.openapi(showRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const detail = await backups.get(project_id, backup_id).catch((err: unknown) => {
      throw err instanceof ServiceError && err.httpStatus === 404 ? backupItemNotFound(backup_id) : err;
    });
    return c.json({ backup: backupView(detail, base(c), backups.availabilityZone) }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    await backups.delete(project_id, backup_id);
    return c.body(null, 202);
  });

  return app;
}

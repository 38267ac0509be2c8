// The REST API: VBS v2 + job v1 and the OpenVBS extensions (volumes, tokens), one Hono app for Lambda
// (functions/api.ts) and the local runtime's Node server. Routes are declared with zod schemas that both
// validate requests and produce GET /openapi.json.
//
// Every error answers `{"error":{"code","message"}}` (codes in ../service/errors.ts); the native backup
// show answers 404 as `{"itemNotFound":{"message","code":404}}`. Nothing unexpected leaks: it is logged
// and answered as a generic 500.
import { Logger } from '@aws-lambda-powertools/logger';
import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { ServiceError, backupNotFound, notFound, unauthorized } from '../service/errors.ts';
import { GIB } from '../service/vbs-service.ts';
import type { VbsService } from '../service/vbs-service.ts';
import {
  BackupDetailListResponse,
  BackupListResponse,
  BackupParams,
  BackupResponse,
  CreateBackupBody,
  CreateTokenBody,
  CreateVolumeBody,
  ErrorResponse,
  ItemNotFoundResponse,
  Job,
  JobIdResponse,
  JobParams,
  ListBackupsQuery,
  NativeRestoreResponse,
  ProjectParams,
  QuotaResponse,
  RestoreBody,
  TokenResponse,
  VolumeListResponse,
  VolumeParams,
  VolumeResponse,
} from './schemas.ts';
import { backupSummaryView, backupView, jobView, quotaView, tokenView, volumeView } from './views.ts';

export interface ApiLogger {
  error(message: string, ...extra: unknown[]): void;
}

export interface ApiAppOptions {
  /** How long a resolved token is trusted without asking the store again. Default 60 s. */
  tokenCacheMs?: number;
  /**
   * Behind API Gateway with the token authorizer: take the project from the authorizer's context
   * (`requestContext.authorizer.projectId`) instead of looking the token up again.
   */
  trustAuthorizerContext?: boolean;
  /** Public base URL for links (no trailing slash); default: derived from the request. */
  baseUrl?: string;
  /** Largest request body accepted. Default 256 KiB. */
  maxBodyBytes?: number;
  logger?: ApiLogger;
}

type AppEnv = { Variables: { projectId: string } };

const MAX_CACHED_TOKENS = 10_000;

/** Positive token lookups, kept for a while (unknown tokens are asked again each time). */
class TokenCache {
  private readonly entries = new Map<string, { projectId: string; expires: number }>();
  private readonly resolve: (token: string) => Promise<string | undefined>;
  private readonly ttlMs: number;

  constructor(resolve: (token: string) => Promise<string | undefined>, ttlMs: number) {
    this.resolve = resolve;
    this.ttlMs = ttlMs;
  }

  async projectOf(token: string): Promise<string | undefined> {
    const hit = this.entries.get(token);
    if (hit && hit.expires > Date.now()) return hit.projectId;
    if (hit) this.entries.delete(token);
    const projectId = await this.resolve(token);
    if (projectId && this.ttlMs > 0) {
      if (this.entries.size >= MAX_CACHED_TOKENS) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(token, { projectId, expires: Date.now() + this.ttlMs });
    }
    return projectId;
  }
}

function errorJson(c: Context, err: ServiceError) {
  if (err.itemNotFound) return c.json({ itemNotFound: { message: err.message, code: 404 as const } }, 404);
  return c.json({ error: { code: err.code, message: err.message } }, err.httpStatus as ContentfulStatusCode);
}

function describeIssues(error: ZodError, target: string): string {
  const parts = error.issues.slice(0, 3).map((i) => {
    const where = i.path.length ? i.path.join('.') : target;
    return `${where}: ${i.message}`;
  });
  if (error.issues.length > 3) parts.push(`(${error.issues.length - 3} more)`);
  return `invalid request ${target === 'json' ? 'body' : target}: ${parts.join('; ')}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * What a request for another project's path answers: exactly what a missing resource of the caller's own
 * project would, so nothing about the other project shows.
 */
function foreignNotFound(method: string, path: string): ServiceError {
  const parts = path.split('/').filter(Boolean).map(safeDecode);
  const [, , collection, itemId] = parts;
  if (parts[0] === 'v1' && collection === 'jobs' && itemId) return new ServiceError(404, 'common.0011', `job ${itemId} not found`);
  if (collection === 'backups' && itemId && itemId !== 'detail' && parts.length === 4 && method === 'GET') return backupNotFound(itemId);
  if ((collection === 'backups' || collection === 'cloudbackups') && itemId && itemId !== 'quota') return notFound(`backup ${itemId} not found`);
  if (collection === 'volumes' && itemId) return notFound(`volume ${itemId} not found`);
  return notFound('resource not found');
}

/** Base URL for links: explicit, else API Gateway's stage URL, else the request's origin. */
function baseUrlOf(c: Context, explicit: string | undefined): string {
  if (explicit) return explicit.replace(/\/+$/, '');
  const rc = (c.env as { requestContext?: { domainName?: string; stage?: string } } | undefined)?.requestContext;
  if (rc?.domainName && rc.stage && rc.domainName.endsWith('.amazonaws.com') && rc.stage !== '$default') return `https://${rc.domainName}/${rc.stage}`;
  return new URL(c.req.url).origin;
}

const json = <T>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });
const errors = {
  400: json(ErrorResponse, 'Invalid request'),
  401: json(ErrorResponse, 'Missing or unknown X-Auth-Token'),
  404: json(ErrorResponse, 'Not found (also: another project)'),
};

// ---- routes ----

const tags = { backups: ['Backups'], jobs: ['Jobs'], volumes: ['Volumes (OpenVBS)'], tokens: ['Tokens (OpenVBS)'] };

const createBackupRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/cloudbackups',
  tags: tags.backups,
  summary: 'Create a backup of a volume (job)',
  request: { params: ProjectParams, body: { content: { 'application/json': { schema: CreateBackupBody } }, required: true } },
  responses: { 200: json(JobIdResponse, 'Job started'), ...errors },
});

const quotaRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/cloudbackups/quota',
  tags: tags.backups,
  summary: 'Backup quotas and usage',
  request: { params: ProjectParams },
  responses: { 200: json(QuotaResponse, 'Quotas'), ...errors },
});

const deleteBackupJobRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/cloudbackups/{backup_id}',
  tags: tags.backups,
  summary: 'Delete a backup (job)',
  request: { params: BackupParams },
  responses: { 200: json(JobIdResponse, 'Job started'), ...errors },
});

const restoreJobRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/cloudbackups/{backup_id}/restore',
  tags: tags.backups,
  summary: 'Restore a backup onto a volume (job)',
  request: { params: BackupParams, body: { content: { 'application/json': { schema: RestoreBody } }, required: true } },
  responses: { 200: json(JobIdResponse, 'Job started'), ...errors },
});

const nativeRestoreRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/backups/{backup_id}/restore',
  tags: tags.backups,
  summary: 'Restore a backup onto a volume (native)',
  request: { params: BackupParams, body: { content: { 'application/json': { schema: RestoreBody } }, required: true } },
  responses: { 202: json(NativeRestoreResponse, 'Restore started'), ...errors },
});

const jobRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/jobs/{job_id}',
  tags: tags.jobs,
  summary: 'Job status',
  request: { params: JobParams },
  responses: { 200: json(Job, 'The job'), ...errors },
});

const listRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/backups',
  tags: tags.backups,
  summary: 'List backups',
  request: { params: ProjectParams, query: ListBackupsQuery },
  responses: { 200: json(BackupListResponse, 'Backups'), ...errors },
});

const listDetailRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/backups/detail',
  tags: tags.backups,
  summary: 'List backups with details',
  request: { params: ProjectParams, query: ListBackupsQuery },
  responses: { 200: json(BackupDetailListResponse, 'Backups'), ...errors },
});

const showRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/backups/{backup_id}',
  tags: tags.backups,
  summary: 'Show a backup',
  request: { params: BackupParams },
  responses: { 200: json(BackupResponse, 'The backup'), 400: errors[400], 401: errors[401], 404: json(ItemNotFoundResponse, 'No such backup') },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v2/{project_id}/backups/{backup_id}',
  tags: tags.backups,
  summary: 'Delete a backup',
  request: { params: BackupParams },
  responses: { 202: { description: 'Deletion started' }, ...errors },
});

const createVolumeRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/volumes',
  tags: tags.volumes,
  summary: 'Create a sparse image volume, or register an existing image or block device',
  request: { params: ProjectParams, body: { content: { 'application/json': { schema: CreateVolumeBody } }, required: true } },
  responses: { 200: json(VolumeResponse, 'The volume'), ...errors, 409: json(ErrorResponse, 'Path already registered') },
});

const listVolumesRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/volumes',
  tags: tags.volumes,
  summary: 'List volumes',
  request: { params: ProjectParams },
  responses: { 200: json(VolumeListResponse, 'Volumes'), ...errors },
});

const showVolumeRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/volumes/{volume_id}',
  tags: tags.volumes,
  summary: 'Show a volume',
  request: { params: VolumeParams },
  responses: { 200: json(VolumeResponse, 'The volume'), ...errors },
});

const deleteVolumeRoute = createRoute({
  method: 'delete',
  path: '/v2/{project_id}/volumes/{volume_id}',
  tags: tags.volumes,
  summary: 'Delete a volume (a managed image is removed with it); refused while a job holds it',
  request: { params: VolumeParams },
  responses: { 204: { description: 'Deleted' }, ...errors },
});

const createTokenRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/tokens',
  tags: tags.tokens,
  summary: 'Issue another token for the project (the secret is shown once)',
  request: { params: ProjectParams, body: { content: { 'application/json': { schema: CreateTokenBody } } } },
  responses: { 201: json(TokenResponse, 'The new token'), ...errors },
});

export function createApiApp(service: VbsService, options: ApiAppOptions = {}) {
  const logger: ApiLogger = options.logger ?? new Logger({ serviceName: 'openvbs-api' });
  const tokens = new TokenCache((token) => service.authenticate(token), options.tokenCacheMs ?? 60_000);
  const trustAuthorizer = options.trustAuthorizerContext ?? false;

  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const code = result.target === 'json' ? 'VolumeBackup.0002' : 'OpenVBS.0400';
        return c.json({ error: { code, message: describeIssues(result.error as ZodError, result.target) } }, 400);
      }
    },
  });

  app.onError((err, c) => {
    if (err instanceof ServiceError) return errorJson(c, err);
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 400 ? 'VolumeBackup.0002' : `OpenVBS.0${status}`;
      const message = status === 400 ? err.message || 'malformed request' : status === 415 ? 'request body must be JSON (Content-Type: application/json)' : err.message || 'request refused';
      return c.json({ error: { code, message } }, status as ContentfulStatusCode);
    }
    logger.error('unexpected error', { method: c.req.method, path: c.req.path, error: err });
    return c.json({ error: { code: 'OpenVBS.0500', message: 'internal error; the service logged the details' } }, 500);
  });

  app.notFound((c) => c.json({ error: { code: 'OpenVBS.0404', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
    let projectId: string | undefined;
    if (trustAuthorizer) {
      const fromAuthorizer = (c.env as { requestContext?: { authorizer?: { projectId?: unknown } } } | undefined)?.requestContext?.authorizer?.projectId;
      if (typeof fromAuthorizer === 'string' && fromAuthorizer) projectId = fromAuthorizer;
    }
    if (!projectId) {
      const token = c.req.header('X-Auth-Token');
      projectId = token ? await tokens.projectOf(token) : undefined;
    }
    if (!projectId) throw unauthorized();
    const pathProject = c.req.path.split('/')[2];
    if (pathProject !== undefined && safeDecode(pathProject) !== projectId) throw foreignNotFound(c.req.method, c.req.path);
    c.set('projectId', projectId);
    await next();
  };

  const limit = bodyLimit({
    maxSize: options.maxBodyBytes ?? 256 * 1024,
    onError: (c) => c.json({ error: { code: 'OpenVBS.0413', message: 'request body too large' } }, 413),
  });
  for (const prefix of ['/v1/*', '/v2/*']) app.use(prefix, authenticate, limit);

  const base = (c: Context) => baseUrlOf(c, options.baseUrl);

  // ---- backups and jobs ----

  app.openapi(createBackupRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { backup } = c.req.valid('json');
    const full = backup.extend_param?.FullBackup;
    const { jobId } = await service.createBackup(project_id, {
      volumeId: backup.volume_id,
      name: backup.name,
      ...(backup.description != null ? { description: backup.description } : {}),
      ...(backup.snapshot_id != null ? { snapshotId: backup.snapshot_id } : {}),
      ...(backup.tags ? { tags: backup.tags } : {}),
      forceFull: full === true || (typeof full === 'string' && full.toLowerCase() === 'true'),
    });
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(quotaRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json(quotaView(await service.getQuota(project_id)), 200);
  });

  app.openapi(deleteBackupJobRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const { jobId } = await service.deleteBackup(project_id, backup_id);
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(restoreJobRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const { restore } = c.req.valid('json');
    const { jobId } = await service.restoreBackup(project_id, backup_id, restore.volume_id);
    return c.json({ job_id: jobId }, 200);
  });

  app.openapi(nativeRestoreRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const { restore } = c.req.valid('json');
    const res = await service.restoreBackup(project_id, backup_id, restore.volume_id);
    return c.json({ restore: { backup_id: res.backupId, volume_id: res.volumeId, volume_name: res.volumeName } }, 202);
  });

  app.openapi(jobRoute, async (c) => {
    const { project_id, job_id } = c.req.valid('param');
    return c.json(jobView(await service.getJob(project_id, job_id)), 200);
  });

  const listPage = async (c: Context, projectId: string, query: ReturnType<typeof ListBackupsQuery.parse>) => {
    const page = await service.listBackups(projectId, {
      ...(query.name !== undefined ? { name: query.name } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(query.volume_id !== undefined ? { volumeId: query.volume_id } : {}),
      ...(query.offset !== undefined ? { offset: query.offset } : {}),
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
      ...(query.marker !== undefined ? { marker: query.marker } : {}),
      ...(query.sort_key !== undefined ? { sortKey: query.sort_key } : {}),
      ...(query.sort_dir !== undefined ? { sortDir: query.sort_dir } : {}),
    });
    let links: Array<{ href: string; rel: string }> | undefined;
    if (page.nextMarker) {
      const params = new URLSearchParams();
      for (const key of ['name', 'status', 'volume_id', 'sort_key', 'sort_dir'] as const) {
        const v = query[key];
        if (v !== undefined) params.set(key, String(v));
      }
      params.set('limit', String(page.limit));
      params.set('marker', page.nextMarker);
      links = [{ href: `${base(c)}${c.req.path}?${params}`, rel: 'next' }];
    }
    return { page, links };
  };

  // `detail` before `{backup_id}`: the first matching route answers.
  app.openapi(listDetailRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { page, links } = await listPage(c, project_id, c.req.valid('query'));
    const backups = page.backups.map((b) => backupView(b, base(c), service.availabilityZone));
    return c.json({ backups, ...(links ? { backups_links: links } : {}) }, 200);
  });

  app.openapi(listRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { page, links } = await listPage(c, project_id, c.req.valid('query'));
    const backups = page.backups.map((b) => backupSummaryView(b, base(c)));
    return c.json({ backups, ...(links ? { backups_links: links } : {}) }, 200);
  });

  app.openapi(showRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    const detail = await service.getBackup(project_id, backup_id);
    return c.json({ backup: backupView(detail, base(c), service.availabilityZone) }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const { project_id, backup_id } = c.req.valid('param');
    await service.deleteBackup(project_id, backup_id);
    return c.body(null, 202);
  });

  // ---- volumes ----

  app.openapi(createVolumeRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { volume } = c.req.valid('json');
    const kms = volume.kms_key_id ? { kmsKeyId: volume.kms_key_id } : {};
    const record =
      volume.path !== undefined
        ? await service.registerVolume(project_id, { name: volume.name, path: volume.path, ...kms, ...(volume.size_bytes ? { sizeBytes: volume.size_bytes } : {}) })
        : await service.createVolume(project_id, { name: volume.name, sizeBytes: volume.size_bytes ?? (volume.size ?? 0) * GIB, ...kms });
    return c.json({ volume: volumeView(record) }, 200);
  });

  app.openapi(listVolumesRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ volumes: (await service.listVolumes(project_id)).map(volumeView) }, 200);
  });

  app.openapi(showVolumeRoute, async (c) => {
    const { project_id, volume_id } = c.req.valid('param');
    return c.json({ volume: volumeView(await service.getVolume(project_id, volume_id)) }, 200);
  });

  app.openapi(deleteVolumeRoute, async (c) => {
    const { project_id, volume_id } = c.req.valid('param');
    await service.deleteVolume(project_id, volume_id);
    return c.body(null, 204);
  });

  // ---- tokens ----

  app.openapi(createTokenRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const body = c.req.valid('json');
    const { token, record } = await service.createToken(project_id, body.token?.description);
    return c.json(tokenView(token, record), 201);
  });

  // ---- the OpenAPI document (no auth) ----

  app.openAPIRegistry.registerComponent('securitySchemes', 'XAuthToken', { type: 'apiKey', in: 'header', name: 'X-Auth-Token' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'OpenVBS',
      version: '0.1.0',
      description: 'Open Volume Backup Service: the VBS v2 and job v1 APIs, plus OpenVBS volume inventory and token extensions.',
    },
    security: [{ XAuthToken: [] }],
  });

  return app;
}

export type ApiApp = ReturnType<typeof createApiApp>;

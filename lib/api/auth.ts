// Authentication: `X-Auth-Token` (or, behind API Gateway, the token authorizer's context) -> the project.
// A path naming another project answers exactly what a missing resource of the caller's own project
// would, so nothing about the other project shows.
import type { MiddlewareHandler } from 'hono';
import { ServiceError, backupNotFound, notFound, unauthorized } from '../service/errors.ts';
import type { ApiEnv } from './http.ts';

const MAX_CACHED_TOKENS = 10_000;

/** Positive token lookups, kept for a while (unknown tokens are asked again each time). */
export class TokenCache {
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

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The answer to a request for another project's path: the one a missing resource of the caller's own gets. */
function foreignNotFound(method: string, path: string): ServiceError {
  const parts = path.split('/').filter(Boolean).map(safeDecode);
  const [, , collection, itemId] = parts;
  if (parts[0] === 'v1' && collection === 'jobs' && itemId) return new ServiceError(404, 'common.0011', `job ${itemId} not found`);
  if (collection === 'backups' && itemId && itemId !== 'detail' && parts.length === 4 && method === 'GET') return backupNotFound(itemId);
  if ((collection === 'backups' || collection === 'cloudbackups') && itemId && itemId !== 'quota') return notFound(`backup ${itemId} not found`);
  if (collection === 'volumes' && itemId) return notFound(`volume ${itemId} not found`);
  return notFound('resource not found');
}

export interface AuthOptions {
  tokens: TokenCache;
  /** Take the project from API Gateway's authorizer context (`requestContext.authorizer.projectId`) when present. */
  trustAuthorizerContext: boolean;
}

/** Sets `projectId`; 401 without a known token; 404 for a path under another project. */
export function authenticate(options: AuthOptions): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    let projectId: string | undefined;
    if (options.trustAuthorizerContext) {
      const fromAuthorizer = (c.env as { requestContext?: { authorizer?: { projectId?: unknown } } } | undefined)?.requestContext?.authorizer?.projectId;
      if (typeof fromAuthorizer === 'string' && fromAuthorizer) projectId = fromAuthorizer;
    }
    if (!projectId) {
      const token = c.req.header('X-Auth-Token');
      projectId = token ? await options.tokens.projectOf(token) : undefined;
    }
    if (!projectId) throw unauthorized();
    const pathProject = c.req.path.split('/')[2];
    if (pathProject !== undefined && safeDecode(pathProject) !== projectId) throw foreignNotFound(c.req.method, c.req.path);
    c.set('projectId', projectId);
    await next();
  };
}

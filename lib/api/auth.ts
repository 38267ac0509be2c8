// Authentication: `X-Auth-Token` (or, behind API Gateway, the token authorizer's context) -> the project and
// the token's scope. A path naming another project answers exactly what a missing resource of the caller's
// own project would, so nothing about the other project shows. A `user` token reaches only backups,
// restores and jobs; everything else (volume inventory, keys, tokens, and any resource added later until it
// is opened here) needs an `admin` token: 403 otherwise.
import type { MiddlewareHandler } from 'hono';
import type { TokenRecord, TokenScope } from '../catalog/tokens.ts';
import { ServiceError, backupItemNotFound, backupNotFound, jobNotFound, notFound, serverNotFound, unauthorized, volumeNotFound } from '../service/errors.ts';
import { processTokenRevocations } from '../service/tokens.ts';
import type { TokenRevocations } from '../service/tokens.ts';
import type { ApiEnv } from './http.ts';

const MAX_CACHED_TOKENS = 10_000;

/** What a token is, as the API needs it. */
export type TokenIdentity = Pick<TokenRecord, 'projectId' | 'scope'> & Partial<Pick<TokenRecord, 'expiresAt'>>;

export interface TokenCacheOptions {
  /** Revocations that empty the cache (default: this process's). */
  revocations?: TokenRevocations;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
}

/**
 * Positive token lookups, kept for `ttlMs` but never past the token's expiry nor past a revocation in this
 * process (unknown tokens are asked again each time).
 */
export class TokenCache {
  private readonly entries = new Map<string, { identity: TokenIdentity; expires: number; generation: number }>();
  private readonly resolve: (token: string) => Promise<TokenIdentity | undefined>;
  private readonly ttlMs: number;
  private readonly revocations: TokenRevocations;
  private readonly now: () => number;

  constructor(resolve: (token: string) => Promise<TokenIdentity | undefined>, ttlMs: number, options: TokenCacheOptions = {}) {
    this.resolve = resolve;
    this.ttlMs = ttlMs;
    this.revocations = options.revocations ?? processTokenRevocations;
    this.now = options.now ?? Date.now;
  }

  async identify(token: string): Promise<TokenIdentity | undefined> {
    const hit = this.entries.get(token);
    if (hit && hit.expires > this.now() && hit.generation === this.revocations.generation) return hit.identity;
    if (hit) this.entries.delete(token);
    // The generation before the lookup: a revocation during it makes the entry stale at once.
    const generation = this.revocations.generation;
    const identity = await this.resolve(token);
    if (identity && this.ttlMs > 0) {
      const expires = Math.min(this.now() + this.ttlMs, identity.expiresAt ? Date.parse(identity.expiresAt) : Infinity);
      if (this.entries.size >= MAX_CACHED_TOKENS) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(token, { identity, expires, generation });
    }
    return identity;
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
  if (parts[0] === 'v1' && collection === 'jobs' && itemId) return jobNotFound(itemId);
  if (collection === 'backups' && itemId && itemId !== 'detail' && parts.length === 4 && method === 'GET') return backupItemNotFound(itemId);
  if ((collection === 'backups' || collection === 'cloudbackups') && itemId && itemId !== 'quota') return backupNotFound(itemId);
  if (collection === 'volumes' && itemId) return volumeNotFound(itemId);
  if (parts[0] === 'v1' && collection === 'servers' && itemId) return serverNotFound(itemId);
  if (parts[0] === 'v1' && collection === 'tokens' && itemId) return notFound(`token ${itemId} not found`);
  if (parts[0] === 'v1' && collection === 'subscriptions' && itemId) return notFound(`subscription ${itemId} not found`);
  return notFound('resource not found');
}

/** Collections a `user` token may use (`/v1|v2/{project_id}/<collection>/...`); all others need `admin`. */
// CSBS's server backups are backups too: protect, checkpoint items, restores and quotas (`providers/...` holds
// only the CSBS provider's resources and checkpoints).
// Backup shares are backups too (a user token shares and lists them, as it restores). Backup policies (VBS
// backuppolicy, CSBS policies) make backups: a user token manages them.
const USER_COLLECTIONS: ReadonlySet<string> = new Set(['backups', 'cloudbackups', 'jobs', 'providers', 'checkpoint_items', 'restores', 'quotas', 'os-vendor-backup-sharing', 'backuppolicy', 'backuppolicyresources', 'policies', 'csbs_backup', 'csbs_backup_policy']);

function requiredScope(path: string): TokenScope {
  const collection = path.split('/')[3];
  return collection !== undefined && USER_COLLECTIONS.has(safeDecode(collection)) ? 'user' : 'admin';
}

const forbidden = () =>
  new ServiceError(403, 'OpenVBS.0403', 'this token has the user scope (backups, server backups, restores and jobs); the volume and server inventory, keys and tokens need an admin token');

export interface AuthOptions {
  tokens: TokenCache;
  /**
   * Take the project and scope from API Gateway's authorizer context (`requestContext.authorizer.projectId`,
   * `.scope`) when present. A context without a scope counts as `user`.
   */
  trustAuthorizerContext: boolean;
}

function fromAuthorizerContext(env: unknown): TokenIdentity | undefined {
  const context = (env as { requestContext?: { authorizer?: { projectId?: unknown; scope?: unknown } } } | undefined)?.requestContext?.authorizer;
  if (typeof context?.projectId !== 'string' || !context.projectId) return undefined;
  return { projectId: context.projectId, scope: context.scope === 'admin' ? 'admin' : 'user' };
}

/** Sets `projectId`; 401 without a valid token; 404 for a path under another project; 403 for a user token on an admin route. */
export function authenticate(options: AuthOptions): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    let identity = options.trustAuthorizerContext ? fromAuthorizerContext(c.env) : undefined;
    if (!identity) {
      const token = c.req.header('X-Auth-Token');
      identity = token ? await options.tokens.identify(token) : undefined;
    }
    if (!identity) throw unauthorized();
    const pathProject = c.req.path.split('/')[2];
    if (pathProject !== undefined && safeDecode(pathProject) !== identity.projectId) throw foreignNotFound(c.req.method, c.req.path);
    if (identity.scope !== 'admin' && requiredScope(c.req.path) === 'admin') throw forbidden();
    c.set('projectId', identity.projectId);
    await next();
  };
}

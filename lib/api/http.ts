// What every route module shares: the router type with request validation, how errors render, and the
// base URL of links.
//
// Every error answers `{"error":{"code","message"}}` (codes in ../service/errors.ts); the native backup
// show answers 404 as `{"itemNotFound":{"message","code":404}}`. A path the API serves asked with another
// method answers 405 with an `Allow` header (OPTIONS: 204 with it); a path it does not serve, 404. Nothing
// unexpected leaks: it is logged and answered as a generic 500.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { ServiceError } from '../service/errors.ts';

/** The authenticated project, set by the auth middleware. */
export type ApiEnv = { Variables: { projectId: string } };

export interface ApiLogger {
  error(message: string, ...extra: unknown[]): void;
}

function describeIssues(error: ZodError, target: string): string {
  const parts = error.issues.slice(0, 3).map((i) => {
    const where = i.path.length ? i.path.join('.') : target;
    return `${where}: ${i.message}`;
  });
  if (error.issues.length > 3) parts.push(`(${error.issues.length - 3} more)`);
  return `invalid request ${target === 'json' ? 'body' : target}: ${parts.join('; ')}`;
}

/** A router whose schema failures answer 400: VolumeBackup.0002 for the body, OpenVBS.0400 for path and query. */
export function createRouter() {
  return new OpenAPIHono<ApiEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const code = result.target === 'json' ? 'VolumeBackup.0002' : 'OpenVBS.0400';
        return c.json({ error: { code, message: describeIssues(result.error as ZodError, result.target) } }, 400);
      }
    },
  });
}

export type ApiRouter = ReturnType<typeof createRouter>;

function serviceErrorJson(c: Context, err: ServiceError) {
  if (err.itemNotFound) return c.json({ itemNotFound: { message: err.message, code: 404 as const } }, 404);
  return c.json({ error: { code: err.code, message: err.message } }, err.httpStatus as ContentfulStatusCode);
}

/** The routes the app declares (its OpenAPI paths): a matcher, how many literal segments it has, and its methods. */
function declaredPaths(app: ApiRouter): Array<{ matches: RegExp; literals: number; methods: Set<string> }> {
  const byPath = new Map<string, Set<string>>();
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== 'route') continue;
    const methods = byPath.get(def.route.path) ?? new Set<string>();
    methods.add(def.route.method.toUpperCase());
    byPath.set(def.route.path, methods);
  }
  return [...byPath].map(([path, methods]) => {
    const parts = path.split('/');
    const isParam = (part: string) => /^\{[^}]+\}$/.test(part);
    const pattern = parts.map((part) => (isParam(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
    return { matches: new RegExp(`^${pattern}$`), literals: parts.filter((part) => !isParam(part)).length, methods };
  });
}

/**
 * What `Allow` says for `path`: the methods of the declared route it names (the one with the most literal
 * segments, as `/backups/detail` before `/backups/{backup_id}`), HEAD with GET; none for a path not served.
 */
function allowedMethods(paths: ReturnType<typeof declaredPaths>, path: string): string[] {
  const matching = paths.filter((p) => p.matches.test(path));
  if (matching.length === 0) return [];
  const literals = Math.max(...matching.map((p) => p.literals));
  const allowed = new Set<string>(['OPTIONS']);
  for (const p of matching) if (p.literals === literals) for (const m of p.methods) allowed.add(m);
  if (allowed.has('GET')) allowed.add('HEAD');
  return [...allowed].sort();
}

/** Renders service errors, Hono's own refusals (malformed JSON, 415), wrong methods and unknown routes; logs anything else as a 500. */
export function handleErrors(app: ApiRouter, logger: ApiLogger): void {
  app.onError((err, c) => {
    if (err instanceof ServiceError) return serviceErrorJson(c, err);
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 400 ? 'VolumeBackup.0002' : `OpenVBS.0${status}`;
      const message = status === 400 ? err.message || 'malformed request' : status === 415 ? 'request body must be JSON (Content-Type: application/json)' : err.message || 'request refused';
      return c.json({ error: { code, message } }, status as ContentfulStatusCode);
    }
    logger.error('unexpected error', { method: c.req.method, path: c.req.path, error: err });
    return c.json({ error: { code: 'OpenVBS.0500', message: 'internal error; the service logged the details' } }, 500);
  });
  // Read once the first request comes: by then every route module is mounted.
  let paths: ReturnType<typeof declaredPaths> | undefined;
  app.notFound((c) => {
    paths ??= declaredPaths(app);
    const allowed = allowedMethods(paths, c.req.path);
    if (allowed.length === 0) return c.json({ error: { code: 'OpenVBS.0404', message: `no route for ${c.req.method} ${c.req.path}` } }, 404);
    c.header('Allow', allowed.join(', '));
    if (c.req.method === 'OPTIONS') return c.body(null, 204);
    return c.json({ error: { code: 'OpenVBS.0405', message: `${c.req.method} is not allowed on ${c.req.path}; allowed: ${allowed.join(', ')}` } }, 405);
  });
}

/** Base URL for links: explicit, else API Gateway's stage URL, else the request's origin. */
export function baseUrlOf(c: Context, explicit: string | undefined): string {
  if (explicit) return explicit.replace(/\/+$/, '');
  const rc = (c.env as { requestContext?: { domainName?: string; stage?: string } } | undefined)?.requestContext;
  if (rc?.domainName && rc.stage && rc.domainName.endsWith('.amazonaws.com') && rc.stage !== '$default') return `https://${rc.domainName}/${rc.stage}`;
  return new URL(c.req.url).origin;
}

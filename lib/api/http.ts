// What every route module shares: the router type with request validation, how errors render, and the
// base URL of links.
//
// Every error answers `{"error":{"code","message"}}` (codes in ../service/errors.ts); the native backup
// show answers 404 as `{"itemNotFound":{"message","code":404}}`. Nothing unexpected leaks: it is logged
// and answered as a generic 500.
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

/** Renders service errors, Hono's own refusals (malformed JSON, 415) and unknown routes; logs anything else as a 500. */
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
  app.notFound((c) => c.json({ error: { code: 'OpenVBS.0404', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));
}

/** Base URL for links: explicit, else API Gateway's stage URL, else the request's origin. */
export function baseUrlOf(c: Context, explicit: string | undefined): string {
  if (explicit) return explicit.replace(/\/+$/, '');
  const rc = (c.env as { requestContext?: { domainName?: string; stage?: string } } | undefined)?.requestContext;
  if (rc?.domainName && rc.stage && rc.domainName.endsWith('.amazonaws.com') && rc.stage !== '$default') return `https://${rc.domainName}/${rc.stage}`;
  return new URL(c.req.url).origin;
}

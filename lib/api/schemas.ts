// Schema pieces every route module uses: path ids, text rules, timestamps, the error shapes and the
// response helpers. Each resource's own schemas live beside its routes (routes/<resource>.schemas.ts).
// The same zod schemas validate requests (through @hono/zod-openapi) and describe the API in
// GET /openapi.json; where the service checks a rule itself (to answer with its VBS code), the schema
// only documents it (`documented`), from the same constants the service checks.
import { z } from '@hono/zod-openapi';
import { ID_PATTERN } from '../service/ids.ts';
import { charLength } from '../service/validation.ts';

/** A path (or query) id parameter. */
export const idParam = (name: string, where: 'path' | 'query' = 'path') =>
  z
    .string()
    .regex(ID_PATTERN, `${name} must be 1-128 letters, digits, "_" or "-"`)
    .openapi({ param: { name, in: where }, example: name === 'project_id' ? '0123456789abcdef0123456789abcdef' : '6f1c3c52-7a4b-4e43-9d3e-8d4c2a0f1b11' });

export const ProjectParams = z.object({ project_id: idParam('project_id') });

/**
 * A string of `min`..`max` characters, counted as JSON Schema counts them (code points; zod's own
 * `.max()` counts UTF-16 units, so the document and the server would disagree on astral characters).
 */
export const text = (max: number, min = 0) =>
  z
    .string()
    .refine((s) => {
      const length = charLength(s);
      return length >= min && length <= max;
    }, min > 0 ? `must be ${min}-${max} characters` : `must be at most ${max} characters`)
    .openapi({ ...(min > 0 ? { minLength: min } : {}), maxLength: max });

/** A string rule the service enforces with its own error code: stated here, checked there. */
export const documented = (rule: { pattern?: string; minLength?: number; maxLength: number; description?: string }) => z.string().openapi(rule);

// ---- timestamps ----

/** How VBS writes times: UTC, microseconds, no zone suffix (`2018-08-16T06:35:46.346549`). */
export const VBS_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;

/**
 * A stored time (ISO 8601, as the catalog keeps it) the way VBS writes it. Every view's timestamps go
 * through here. A time without a zone is UTC; fractions are kept to the microsecond.
 */
export function vbsTime(iso: string): string {
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(iso) ? iso : `${iso}Z`;
  const at = new Date(zoned);
  if (Number.isNaN(at.getTime())) throw new Error(`not a timestamp: ${iso}`);
  const fraction = /T\d{2}:\d{2}:\d{2}\.(\d+)/.exec(iso)?.[1] ?? '';
  return `${at.toISOString().slice(0, 19)}.${fraction.slice(0, 6).padEnd(6, '0')}`;
}

export const Timestamp = z.string().regex(VBS_TIME_PATTERN).openapi({ description: 'UTC, microseconds, no zone suffix (as VBS writes it)', example: '2018-08-16T06:35:46.346549' });

// ---- errors ----

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
export const ItemNotFoundResponse = z.object({ itemNotFound: z.object({ message: z.string(), code: z.literal(404) }) }).openapi('ItemNotFound');

export const Link = z.object({ href: z.string(), rel: z.string() });

/** A JSON response (or request body) of `schema`. */
export const json = <T>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });

/** A JSON request body of `schema`. */
export const jsonBody = <T>(schema: T, required = true) => ({ content: { 'application/json': { schema } }, required });

const error = (description: string) => json(ErrorResponse, description);

/** The errors any authenticated route may answer. */
export const errorResponses = {
  400: error('Invalid path or query parameter (OpenVBS.0400), a malformed body or one that fails its schema (VolumeBackup.0002), or a request the service refuses (the code says why)'),
  401: error('Missing or unknown X-Auth-Token (OpenVBS.0401)'),
  404: error('Not found (OpenVBS.0404; a job: common.0011), also for another project’s paths'),
  500: error('Internal error (OpenVBS.0500), or the job could not be started (VolumeBackup.0014)'),
};

/** What a route that needs an admin token answers to a user token (lib/api/auth.ts). */
export const adminResponses = {
  403: error('The token has the user scope; the volume inventory, keys and tokens need an admin token (OpenVBS.0403)'),
};

/** What the app's own checks in front of every route answer: app.ts adds these to each route's document. */
export const sharedResponses = {
  401: errorResponses[401],
  500: errorResponses[500],
};

/** ... and to each route with a request body. */
export const bodyResponses = {
  413: error('Request body larger than the limit (OpenVBS.0413)'),
  415: error('Request body without a JSON Content-Type (OpenVBS.0415)'),
};

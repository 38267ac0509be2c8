// Schema pieces every route module uses: path ids, the error shapes and the response helpers. Each
// resource's own schemas live beside its routes (routes/<resource>.schemas.ts). The same zod schemas
// validate requests (through @hono/zod-openapi) and describe the API in GET /openapi.json.
import { z } from '@hono/zod-openapi';
import { ID_PATTERN } from '../service/ids.ts';

/** A path (or query) id parameter. */
export const idParam = (name: string, where: 'path' | 'query' = 'path') =>
  z
    .string()
    .regex(ID_PATTERN, `${name} must be 1-128 letters, digits, "_" or "-"`)
    .openapi({ param: { name, in: where }, example: name === 'project_id' ? '0123456789abcdef0123456789abcdef' : '6f1c3c52-7a4b-4e43-9d3e-8d4c2a0f1b11' });

export const ProjectParams = z.object({ project_id: idParam('project_id') });

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
export const ItemNotFoundResponse = z.object({ itemNotFound: z.object({ message: z.string(), code: z.literal(404) }) }).openapi('ItemNotFound');

export const Link = z.object({ href: z.string(), rel: z.string() });

/** A JSON response (or request body) of `schema`. */
export const json = <T>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });

/** A JSON request body of `schema`. */
export const jsonBody = <T>(schema: T, required = true) => ({ content: { 'application/json': { schema } }, required });

/** The errors any authenticated route may answer. */
export const errorResponses = {
  400: json(ErrorResponse, 'Invalid request'),
  401: json(ErrorResponse, 'Missing or unknown X-Auth-Token'),
  404: json(ErrorResponse, 'Not found (also: another project)'),
};

// Customer keys (OpenVBS extension): create and list the keys a project encrypts its volumes' backups under.
import { createRoute } from '@hono/zod-openapi';
import type { KeyAdminService } from '../../service/keys.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, adminResponses, errorResponses, json, jsonBody } from '../schemas.ts';
import { CreateKeyBody, KeyListResponse, KeyResponse, keyView } from './keys.schemas.ts';

const tags = ['Keys (OpenVBS)'];

const createKeyRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/keys',
  tags,
  summary: 'Create a customer key for the project',
  request: { params: ProjectParams, body: jsonBody(CreateKeyBody, false) },
  responses: { 201: json(KeyResponse, 'The new key'), ...errorResponses, ...adminResponses, 409: json(ErrorResponse, 'Alias already in use (OpenVBS.1202)') },
});

const listKeysRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/keys',
  tags,
  summary: 'List the project’s customer keys, oldest first',
  request: { params: ProjectParams },
  responses: { 200: json(KeyListResponse, 'Keys'), ...errorResponses, ...adminResponses },
});

export function keyRoutes(keys: KeyAdminService) {
  const app = createRouter();

  app.openapi(createKeyRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const body = c.req.valid('json');
    const key = await keys.create(project_id, {
      ...(body.key?.alias !== undefined ? { alias: body.key.alias } : {}),
      ...(body.key?.description !== undefined ? { description: body.key.description } : {}),
    });
    return c.json({ key: keyView(key) }, 201);
  });

  app.openapi(listKeysRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ keys: (await keys.list(project_id)).map(keyView) }, 200);
  });

  return app;
}

// Tokens (OpenVBS extension): a project's token issues more tokens for it.
import { createRoute } from '@hono/zod-openapi';
import type { TokenService } from '../../service/tokens.ts';
import { createRouter } from '../http.ts';
import { ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import { CreateTokenBody, TokenResponse, tokenView } from './tokens.schemas.ts';

const createTokenRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/tokens',
  tags: ['Tokens (OpenVBS)'],
  summary: 'Issue another token for the project (the secret is shown once)',
  request: { params: ProjectParams, body: jsonBody(CreateTokenBody, false) },
  responses: { 201: json(TokenResponse, 'The new token'), ...errorResponses },
});

export function tokenRoutes(tokens: TokenService) {
  const app = createRouter();
  app.openapi(createTokenRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const body = c.req.valid('json');
    const { token, record } = await tokens.create(project_id, body.token?.description);
    return c.json(tokenView(token, record), 201);
  });
  return app;
}

// Tokens (OpenVBS extension): an admin token of a project issues, lists and revokes its tokens.
import { createRoute } from '@hono/zod-openapi';
import type { TokenService } from '../../service/tokens.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, errorResponses, json, jsonBody } from '../schemas.ts';
import { CreateTokenBody, TokenListResponse, TokenParams, TokenResponse, tokenInfoView, tokenView } from './tokens.schemas.ts';

const tags = ['Tokens (OpenVBS)'];
const responses = { ...errorResponses, 403: json(ErrorResponse, 'Not an admin token') };

const createTokenRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/tokens',
  tags,
  summary: 'Issue another token for the project (the secret is shown once)',
  request: { params: ProjectParams, body: jsonBody(CreateTokenBody, false) },
  responses: { 201: json(TokenResponse, 'The new token'), ...responses },
});

const listTokensRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/tokens',
  tags,
  summary: 'List the project’s tokens, oldest first (never their secrets)',
  request: { params: ProjectParams },
  responses: { 200: json(TokenListResponse, 'Tokens'), ...responses },
});

const revokeTokenRoute = createRoute({
  method: 'delete',
  path: '/v1/{project_id}/tokens/{token_id}',
  tags,
  summary: 'Revoke a token: refused from now on (behind API Gateway within the authorizer cache, at most 60 s)',
  request: { params: TokenParams },
  responses: { 204: { description: 'Revoked' }, ...responses },
});

export function tokenRoutes(tokens: TokenService) {
  const app = createRouter();

  app.openapi(createTokenRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const req = c.req.valid('json')?.token ?? {};
    const { token, record } = await tokens.create(project_id, {
      scope: req.scope ?? 'user',
      ...(req.description !== undefined ? { description: req.description } : {}),
      ...(req.expires_in !== undefined ? { expiresInSeconds: req.expires_in } : {}),
    });
    return c.json(tokenView(token, record), 201);
  });

  app.openapi(listTokensRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ tokens: (await tokens.list(project_id)).map(tokenInfoView) }, 200);
  });

  app.openapi(revokeTokenRoute, async (c) => {
    const { project_id, token_id } = c.req.valid('param');
    await tokens.revoke(project_id, token_id);
    return c.body(null, 204);
  });

  return app;
}

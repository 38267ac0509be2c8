// Tokens on the wire (OpenVBS extension).
import { z } from '@hono/zod-openapi';
import type { TokenRecord } from '../../catalog/tokens.ts';

export const CreateTokenBody = z
  .object({ token: z.object({ description: z.string().max(255).optional() }).optional() })
  .openapi('CreateTokenRequest');

export const TokenResponse = z.object({
  token: z.object({ id: z.string(), token: z.string().openapi({ description: 'The secret; shown only here' }), project_id: z.string(), created_at: z.string() }),
});

export function tokenView(token: string, record: TokenRecord): z.infer<typeof TokenResponse> {
  return { token: { id: record.tokenId, token, project_id: record.projectId, created_at: record.createdAt } };
}

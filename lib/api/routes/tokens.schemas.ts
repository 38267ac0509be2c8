// Tokens on the wire (OpenVBS extension). The secret appears only in the answer to its creation.
import { z } from '@hono/zod-openapi';
import type { TokenRecord } from '../../catalog/tokens.ts';
import { TOKEN_SCOPES } from '../../catalog/tokens.ts';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../../service/tokens.ts';
import { ProjectParams, idParam, text } from '../schemas.ts';

export const TokenParams = ProjectParams.extend({ token_id: idParam('token_id') });

const Scope = z.enum(TOKEN_SCOPES).openapi({
  description: '`admin`: everything, including the volume inventory, keys and tokens; `user`: backups, restores and jobs only',
});

export const CreateTokenBody = z
  .object({
    token: z
      .object({
        description: text(255).optional(),
        scope: Scope.optional().openapi({ description: 'Default `user`' }),
        expires_in: z.number().int().min(1).max(MAX_TOKEN_LIFETIME_SECONDS).optional().openapi({ description: 'Lifetime in seconds' }),
      })
      // An unknown field (say, a misspelt expiry) is refused rather than silently ignored.
      .strict()
      .optional(),
  })
  .openapi('CreateTokenRequest');

const tokenFields = {
  id: z.string(),
  project_id: z.string(),
  scope: Scope,
  description: z.string().nullable(),
  created_at: z.string(),
  expires_at: z.string().nullable().openapi({ description: 'When the token stops working; null: never' }),
};

export const TokenInfo = z.object(tokenFields).openapi('Token');

export const TokenResponse = z.object({
  token: z.object({ ...tokenFields, token: z.string().openapi({ description: 'The secret; shown only here' }) }).openapi('NewToken'),
});

export const TokenListResponse = z.object({ tokens: z.array(TokenInfo) });

export function tokenInfoView(record: TokenRecord): z.infer<typeof TokenInfo> {
  return {
    id: record.tokenId,
    project_id: record.projectId,
    scope: record.scope,
    description: record.description ?? null,
    created_at: record.createdAt,
    expires_at: record.expiresAt ?? null,
  };
}

export function tokenView(token: string, record: TokenRecord): z.infer<typeof TokenResponse> {
  return { token: { ...tokenInfoView(record), token } };
}

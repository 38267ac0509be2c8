// API tokens: each is bound to one project and a scope (admin or user), may expire, and can be listed and
// revoked by id. The store keeps only a hash of the secret.
import type { TokenRecord, TokenScope, TokenStore } from '../catalog/tokens.ts';
import { TOKEN_SCOPES } from '../catalog/tokens.ts';
import { badRequest, notFound } from './errors.ts';
import { checkProjectId, isId } from './ids.ts';
import { checkText } from './validation.ts';

export interface CreateTokenRequest {
  description?: string;
  /** Default `admin` (the API asks for `user` unless told otherwise). */
  scope?: TokenScope;
  /** Lifetime in seconds; absent: the token does not expire. (A lifetime, not a time: it needs no clock agreement.) */
  expiresInSeconds?: number;
}

/** The longest lifetime a token may be given (about ten years). */
export const MAX_TOKEN_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/**
 * Revocations made in this process. Caches of positive token lookups (lib/api/auth.ts) compare the
 * generation they saw with the current one and ask the store again after any revocation, so a revoked
 * token is refused at once by every cache of the process.
 */
export class TokenRevocations {
  private count = 0;

  get generation(): number {
    return this.count;
  }

  revoked(): void {
    this.count++;
  }
}

/** The revocations of this process: what a TokenService and a TokenCache share unless given their own. */
export const processTokenRevocations = new TokenRevocations();

const invalidToken = (message: string) => badRequest('OpenVBS.1301', message);

function expiryOf(req: CreateTokenRequest, now: Date): Date | undefined {
  if (req.expiresInSeconds === undefined) return undefined;
  const s = req.expiresInSeconds;
  if (!Number.isSafeInteger(s) || s < 1 || s > MAX_TOKEN_LIFETIME_SECONDS) {
    throw invalidToken(`expires_in must be a whole number of seconds from 1 to ${MAX_TOKEN_LIFETIME_SECONDS}`);
  }
  return new Date(now.getTime() + s * 1000);
}

export class TokenService {
  private readonly tokens: TokenStore;
  private readonly revocations: TokenRevocations;

  constructor(tokens: TokenStore, revocations: TokenRevocations = processTokenRevocations) {
    this.tokens = tokens;
    this.revocations = revocations;
  }

  /** Issues a token for the project; the secret is returned here and never again. */
  async create(projectId: string, req: CreateTokenRequest = {}): Promise<{ token: string; record: TokenRecord }> {
    checkProjectId(projectId);
    checkText(req.description, 'VolumeBackup.0002', { what: 'token description', max: 255 });
    const scope = req.scope ?? 'admin';
    if (!TOKEN_SCOPES.includes(scope)) throw invalidToken(`scope must be one of ${TOKEN_SCOPES.join(', ')}`);
    const now = new Date();
    const expiresAt = expiryOf(req, now);
    return this.tokens.issue(projectId, req.description, { scope, now, ...(expiresAt ? { expiresAt } : {}) });
  }

  /** The project's tokens, oldest first (never their secrets). */
  async list(projectId: string): Promise<TokenRecord[]> {
    checkProjectId(projectId);
    return this.tokens.list(projectId);
  }

  /** Revokes the token at once: from now on it is refused (on AWS after the authorizer's cache, at most 60 s). */
  async revoke(projectId: string, tokenId: string): Promise<void> {
    checkProjectId(projectId);
    if (!isId(tokenId) || !(await this.tokens.revoke(projectId, tokenId))) throw notFound(`token ${tokenId} not found`);
    this.revocations.revoked();
  }

  /** The token's record (project, scope), or undefined for an unknown, revoked or expired token. */
  async authenticate(token: string | undefined): Promise<TokenRecord | undefined> {
    if (!token) return undefined;
    return this.tokens.resolve(token);
  }
}

// API tokens: each is bound to one project; the store keeps only a hash of the secret.
import type { TokenRecord, TokenStore } from '../catalog/tokens.ts';
import { checkProjectId } from './ids.ts';
import { checkText } from './validation.ts';

export class TokenService {
  private readonly tokens: TokenStore;

  constructor(tokens: TokenStore) {
    this.tokens = tokens;
  }

  /** Issues a token for the project; the secret is returned here and never again. */
  async create(projectId: string, description?: string): Promise<{ token: string; record: TokenRecord }> {
    checkProjectId(projectId);
    checkText(description, 'VolumeBackup.0002', { what: 'token description', max: 255 });
    return this.tokens.issue(projectId, description);
  }

  /** The project a token belongs to, or undefined for an unknown token. */
  async authenticate(token: string | undefined): Promise<string | undefined> {
    if (!token) return undefined;
    return (await this.tokens.resolve(token))?.projectId;
  }
}

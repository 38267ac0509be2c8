// API tokens: random secrets bound to one project. Only their SHA-256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import { cond } from './table.ts';
import type { Table } from './table.ts';
import { TOKEN_SORT_KEY, fromItem, tokenKey } from './tables.ts';

export interface TokenRecord {
  tokenId: string;
  projectId: string;
  createdAt: string;
  description?: string;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export interface TokenStore {
  /** Issues a new token for the project; the secret is returned once and never stored. */
  issue(projectId: string, description?: string): Promise<{ token: string; record: TokenRecord }>;
  /** The token's record, or undefined when the token is unknown. */
  resolve(token: string): Promise<TokenRecord | undefined>;
}

/** Longer strings are not tokens we issued; refused before hashing. */
const MAX_TOKEN_LENGTH = 512;

export class TableTokenStore implements TokenStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async issue(projectId: string, description?: string): Promise<{ token: string; record: TokenRecord }> {
    const token = `ovbs_${randomBytes(24).toString('base64url')}`;
    const record: TokenRecord = { tokenId: randomBytes(8).toString('hex'), projectId, createdAt: new Date().toISOString(), description };
    await this.table.put({ pk: tokenKey(hashToken(token)), sk: TOKEN_SORT_KEY, ...record }, cond.notExists());
    return { token, record };
  }

  async resolve(token: string): Promise<TokenRecord | undefined> {
    if (!token || token.length > MAX_TOKEN_LENGTH) return undefined;
    const item = await this.table.get({ pk: tokenKey(hashToken(token)), sk: TOKEN_SORT_KEY });
    return item ? fromItem<TokenRecord>(item) : undefined;
  }
}

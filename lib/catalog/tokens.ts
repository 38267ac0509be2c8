// API tokens: random secrets bound to one project and a scope. Only their SHA-256 is stored.
//
// Two items per token, written and removed together (one transaction):
//   pk "TOKEN#<sha256 of token>"  sk "TOKEN"             the record, found from the secret (authentication)
//   pk "P#<project>"              sk "TOKEN#<tokenId>"   the record and the hash, found from the project (list, revoke)
import { createHash, randomBytes } from 'node:crypto';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import type { Item, Table } from './table.ts';
import { TOKEN_SORT_KEY, fromItem, projectKey, tokenKey } from './tables.ts';

/** `admin`: everything, including the volume inventory, keys and tokens; `user`: backups, restores and jobs. */
export const TOKEN_SCOPES = ['admin', 'user'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

export interface TokenRecord {
  tokenId: string;
  projectId: string;
  scope: TokenScope;
  createdAt: string;
  /** ISO time from which the token is refused; never when absent. */
  expiresAt?: string;
  description?: string;
}

export interface IssueTokenOptions {
  /** Default `admin`: a project's first token has to administer it. */
  scope?: TokenScope;
  expiresAt?: Date;
  /** The issue time (default now). */
  now?: Date;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export interface TokenStore {
  /** Issues a new token for the project; the secret is returned once and never stored. */
  issue(projectId: string, description?: string, options?: IssueTokenOptions): Promise<{ token: string; record: TokenRecord }>;
  /** The token's record, or undefined when the token is unknown, revoked or expired at `now`. */
  resolve(token: string, now?: Date): Promise<TokenRecord | undefined>;
  /** The project's tokens (expired ones too), oldest first. */
  list(projectId: string): Promise<TokenRecord[]>;
  /** Removes the token; false when the project has no such token. */
  revoke(projectId: string, tokenId: string): Promise<boolean>;
}

/** Longer strings are not tokens we issued; refused before hashing. */
const MAX_TOKEN_LENGTH = 512;

/** The project's listing entry of a token. */
export const projectTokenSortKey = (tokenId: string) => `TOKEN#${tokenId}`;

const secretKey = (hash: string) => ({ pk: tokenKey(hash), sk: TOKEN_SORT_KEY });
const listingKey = (projectId: string, tokenId: string) => ({ pk: projectKey(projectId), sk: projectTokenSortKey(tokenId) });

/** Tokens issued before scopes existed could do everything: they stay admin. */
function toRecord(item: Item): TokenRecord {
  const { tokenHash: _hash, ...record } = fromItem<TokenRecord & { tokenHash?: string }>(item);
  return { ...record, scope: record.scope ?? 'admin' };
}

const byCreation = (a: TokenRecord, b: TokenRecord) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.tokenId < b.tokenId ? -1 : 1);

export class TableTokenStore implements TokenStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async issue(projectId: string, description?: string, options: IssueTokenOptions = {}): Promise<{ token: string; record: TokenRecord }> {
    const token = `ovbs_${randomBytes(24).toString('base64url')}`;
    const tokenHash = hashToken(token);
    const record: TokenRecord = {
      tokenId: randomBytes(8).toString('hex'),
      projectId,
      scope: options.scope ?? 'admin',
      createdAt: (options.now ?? new Date()).toISOString(),
      ...(options.expiresAt ? { expiresAt: options.expiresAt.toISOString() } : {}),
      ...(description !== undefined ? { description } : {}),
    };
    await this.table.transact([
      { put: { ...secretKey(tokenHash), ...record }, if: cond.notExists() },
      { put: { ...listingKey(projectId, record.tokenId), ...record, tokenHash }, if: cond.notExists() },
    ]);
    return { token, record };
  }

  async resolve(token: string, now = new Date()): Promise<TokenRecord | undefined> {
    if (!token || token.length > MAX_TOKEN_LENGTH) return undefined;
    const item = await this.table.get(secretKey(hashToken(token)));
    if (!item) return undefined;
    const record = toRecord(item);
    return record.expiresAt !== undefined && record.expiresAt <= now.toISOString() ? undefined : record;
  }

  async list(projectId: string): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for await (const item of queryAll(this.table, { partition: projectKey(projectId), sortKey: { prefix: projectTokenSortKey('') } })) {
      out.push(toRecord(item));
    }
    return out.sort(byCreation);
  }

  async revoke(projectId: string, tokenId: string): Promise<boolean> {
    const key = listingKey(projectId, tokenId);
    const entry = await this.table.get(key);
    if (typeof entry?.tokenHash !== 'string') return false;
    try {
      await this.table.transact([
        { delete: key, if: cond.exists() },
        { delete: secretKey(entry.tokenHash) },
      ]);
      return true;
    } catch (err) {
      // revoked meanwhile by another request
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }
}

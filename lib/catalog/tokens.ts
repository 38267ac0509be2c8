// API tokens: random secrets bound to one project. Only their SHA-256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { fromItem, tokenKey } from './tables.ts';

export interface TokenRecord {
  tokenId: string;
  projectId: string;
  createdAt: string;
  description?: string;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export class TokenStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(ddb: DynamoDBDocumentClient, table: string) {
    this.ddb = ddb;
    this.table = table;
  }

  /** Issues a new token for the project; the secret is returned once and never stored. */
  async issue(projectId: string, description?: string): Promise<{ token: string; record: TokenRecord }> {
    const token = `ovbs_${randomBytes(24).toString('base64url')}`;
    const record: TokenRecord = { tokenId: randomBytes(8).toString('hex'), projectId, createdAt: new Date().toISOString(), description };
    await this.ddb.send(
      new PutCommand({ TableName: this.table, Item: { pk: tokenKey(hashToken(token)), sk: 'TOKEN', ...record }, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
    return { token, record };
  }

  /** The token's record, or undefined when the token is unknown. */
  async resolve(token: string): Promise<TokenRecord | undefined> {
    if (!token || token.length > 512) return undefined;
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk: tokenKey(hashToken(token)), sk: 'TOKEN' } }));
    if (!res.Item) return undefined;
    return fromItem<TokenRecord>(res.Item);
  }
}

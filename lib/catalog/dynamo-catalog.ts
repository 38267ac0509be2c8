// BackupCatalog on DynamoDB (table design in tables.ts).
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { BackupCatalog, BackupRecord, BackupStatus, KeyDomainRecord } from '../engine/ports.ts';
import { CATALOG_GSI1, backupSortKey, domainSortKey, fromItem, projectKey, volumeBackupsKey } from './tables.ts';

export class BackupStateError extends Error {
  override name = 'BackupStateError';
}


export class DynamoBackupCatalog implements BackupCatalog {
  private readonly ddb: DynamoDBDocumentClient;
  readonly table: string;

  constructor(ddb: DynamoDBDocumentClient, table: string) {
    this.ddb = ddb;
    this.table = table;
  }

  async createBackup(record: BackupRecord): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: projectKey(record.projectId),
          sk: backupSortKey(record.backupId),
          gsi1pk: volumeBackupsKey(record.projectId, record.volumeId),
          gsi1sk: `${record.createdAt}#${record.backupId}`,
          ...record,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getBackup(projectId: string, backupId: string): Promise<BackupRecord | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: projectKey(projectId), sk: backupSortKey(backupId) }, ConsistentRead: true }),
    );
    return res.Item ? fromItem<BackupRecord>(res.Item) : undefined;
  }

  async updateBackup(projectId: string, backupId: string, patch: Partial<BackupRecord>, expectStatus?: BackupStatus[]): Promise<BackupRecord> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    const removes: string[] = [];
    const fields = { ...patch, updatedAt: patch.updatedAt ?? new Date().toISOString() };
    for (const [i, [k, v]] of Object.entries(fields).entries()) {
      if (k === 'projectId' || k === 'backupId') continue;
      names[`#f${i}`] = k;
      if (v === undefined) removes.push(`#f${i}`);
      else {
        values[`:v${i}`] = v;
        sets.push(`#f${i} = :v${i}`);
      }
    }
    let condition = 'attribute_exists(pk)';
    if (expectStatus?.length) {
      names['#status'] = 'status';
      expectStatus.forEach((s, i) => (values[`:s${i}`] = s));
      condition += ` AND #status IN (${expectStatus.map((_, i) => `:s${i}`).join(', ')})`;
    }
    try {
      const res = await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: projectKey(projectId), sk: backupSortKey(backupId) },
          UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].join(' ').trim(),
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem<BackupRecord>(res.Attributes!);
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) {
        throw new BackupStateError(
          expectStatus ? `backup ${backupId} is missing or not in status ${expectStatus.join('/')}` : `backup ${backupId} not found`,
        );
      }
      throw err;
    }
  }

  async latestBackup(projectId: string, volumeId: string, status: BackupStatus, domainId?: string): Promise<BackupRecord | undefined> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: CATALOG_GSI1.indexName,
          KeyConditionExpression: 'gsi1pk = :v',
          ExpressionAttributeValues: { ':v': volumeBackupsKey(projectId, volumeId) },
          ScanIndexForward: false,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of res.Items ?? []) {
        if (item.status === status && (!domainId || item.domainId === domainId)) return fromItem<BackupRecord>(item);
      }
      startKey = res.LastEvaluatedKey;
    } while (startKey);
    return undefined;
  }

  /**
   * All backups of a project (any status), or of one of its volumes. The service layer filters, sorts
   * and pages in memory: a project holds at most a few thousand backups.
   */
  async listBackups(projectId: string, options: { volumeId?: string } = {}): Promise<BackupRecord[]> {
    const out: BackupRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new QueryCommand(
          options.volumeId
            ? {
                TableName: this.table,
                IndexName: CATALOG_GSI1.indexName,
                KeyConditionExpression: 'gsi1pk = :v',
                ExpressionAttributeValues: { ':v': volumeBackupsKey(projectId, options.volumeId) },
                ExclusiveStartKey: startKey,
              }
            : {
                TableName: this.table,
                KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
                ExpressionAttributeValues: { ':pk': projectKey(projectId), ':prefix': backupSortKey('') },
                ExclusiveStartKey: startKey,
              },
        ),
      );
      for (const item of res.Items ?? []) out.push(fromItem<BackupRecord>(item));
      startKey = res.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  async getDomain(projectId: string, kmsKeyId: string): Promise<KeyDomainRecord | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: projectKey(projectId), sk: domainSortKey(kmsKeyId) }, ConsistentRead: true }),
    );
    if (!res.Item) return undefined;
    const rec = fromItem<KeyDomainRecord>(res.Item);
    return { ...rec, wrappedKey: Buffer.from(rec.wrappedKey) };
  }

  async putDomainIfAbsent(record: KeyDomainRecord): Promise<KeyDomainRecord> {
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: projectKey(record.projectId), sk: domainSortKey(record.kmsKeyId), ...record },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return record;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const existing = await this.getDomain(record.projectId, record.kmsKeyId);
      if (!existing) throw err;
      return existing;
    }
  }
}

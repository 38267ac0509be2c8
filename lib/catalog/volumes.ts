// Local-mode volume inventory: raw images (or block devices) registered per project, with the VBS-like
// status a backup or restore holds while it runs. A volume is locked by exactly one job at a time.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { fromItem, projectKey, volumeSortKey } from './tables.ts';

export type VolumeStatus = 'available' | 'in-use' | 'backing-up' | 'restoring' | 'error';

export interface VolumeRecord {
  projectId: string;
  volumeId: string;
  name: string;
  sizeBytes: number;
  /** Image file or block device. */
  path: string;
  /** True when the service created the image (it is removed with the volume). */
  managed: boolean;
  kmsKeyId?: string;
  status: VolumeStatus;
  /** The job holding the volume, and the status to return to when it lets go. */
  lockJobId?: string;
  statusBeforeLock?: VolumeStatus;
  createdAt: string;
  updatedAt: string;
}

export class VolumeLockedError extends Error {
  override name = 'VolumeLockedError';
}

export class VolumeStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(ddb: DynamoDBDocumentClient, table: string) {
    this.ddb = ddb;
    this.table = table;
  }

  private key(projectId: string, volumeId: string) {
    return { pk: projectKey(projectId), sk: volumeSortKey(volumeId) };
  }

  async create(volume: VolumeRecord): Promise<void> {
    await this.ddb.send(
      new PutCommand({ TableName: this.table, Item: { ...this.key(volume.projectId, volume.volumeId), ...volume }, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  }

  async get(projectId: string, volumeId: string): Promise<VolumeRecord | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: this.key(projectId, volumeId), ConsistentRead: true }));
    if (!res.Item) return undefined;
    return fromItem<VolumeRecord>(res.Item);
  }

  async list(projectId: string): Promise<VolumeRecord[]> {
    const out: VolumeRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const res = await this.ddb.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': projectKey(projectId), ':prefix': 'VOLUME#' },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of res.Items ?? []) {
        out.push(fromItem<VolumeRecord>(item));
      }
      startKey = res.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** Deletes an unlocked volume; false when it is locked or gone. */
  async delete(projectId: string, volumeId: string): Promise<boolean> {
    try {
      await this.ddb.send(
        new DeleteCommand({ TableName: this.table, Key: this.key(projectId, volumeId), ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(lockJobId)' }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /**
   * Locks the volume for `jobId` and sets `busyStatus`, if it is in one of `from` and not locked.
   * Idempotent for the same job. Throws VolumeLockedError otherwise.
   */
  async lock(projectId: string, volumeId: string, jobId: string, busyStatus: VolumeStatus, from: VolumeStatus[]): Promise<VolumeRecord> {
    try {
      const res = await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(projectId, volumeId),
          UpdateExpression: 'SET statusBeforeLock = #status, #status = :busy, lockJobId = :job, updatedAt = :now',
          ConditionExpression: `attribute_exists(pk) AND attribute_not_exists(lockJobId) AND #status IN (${from.map((_, i) => `:f${i}`).join(', ')})`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':busy': busyStatus, ':job': jobId, ':now': new Date().toISOString(), ...Object.fromEntries(from.map((s, i) => [`:f${i}`, s])) },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem<VolumeRecord>(res.Attributes!);
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const current = await this.get(projectId, volumeId);
      if (current?.lockJobId === jobId) return current;
      throw new VolumeLockedError(current ? `volume ${volumeId} is ${current.status}${current.lockJobId ? ` (job ${current.lockJobId})` : ''}` : `volume ${volumeId} not found`);
    }
  }

  /** Releases the lock `jobId` holds, back to the status before it (or `status`). No-op if not held. */
  async release(projectId: string, volumeId: string, jobId: string, status?: VolumeStatus): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(projectId, volumeId),
          UpdateExpression: 'SET #status = :status, updatedAt = :now REMOVE lockJobId, statusBeforeLock',
          ConditionExpression: 'lockJobId = :job',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':job': jobId, ':now': new Date().toISOString(), ':status': status ?? (await this.get(projectId, volumeId))?.statusBeforeLock ?? 'available' },
        }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }
}

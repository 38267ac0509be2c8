// Deleting a backup: the catalog item goes and a GC queue entry comes, in one transaction, so a deleted
// backup no longer lists and its chunks are never forgotten. The mark-and-sweep GC (policies issue)
// drains the queue: it removes the backup's manifests and sweeps chunks that no committed manifest
// references any more, with time margins. Nothing a live backup references is deleted here.
//
// queue item: pk "GCQ"  sk "<deletedAt ISO>#<project>#<backupId>"  { projectId, backupId, domainId, manifestPrefix, segmentCount }
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { BackupRecord } from '../engine/ports.ts';
import { backupSortKey, fromItem, projectKey } from './tables.ts';

export const GC_QUEUE_KEY = 'GCQ';

export interface GcQueueEntry {
  projectId: string;
  backupId: string;
  domainId: string;
  manifestPrefix: string;
  segmentCount: number;
  deletedAt: string;
}

/** Removes a `deleting` backup from the catalog and queues it for GC. False when it is not `deleting`. */
export async function removeBackupAndQueueGc(ddb: DynamoDBDocumentClient, table: string, backup: BackupRecord): Promise<boolean> {
  const deletedAt = new Date().toISOString();
  const entry: GcQueueEntry = {
    projectId: backup.projectId,
    backupId: backup.backupId,
    domainId: backup.domainId,
    manifestPrefix: backup.manifestPrefix,
    segmentCount: backup.segmentCount,
    deletedAt,
  };
  try {
    await ddb.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: table,
              Key: { pk: projectKey(backup.projectId), sk: backupSortKey(backup.backupId) },
              ConditionExpression: '#status = :deleting',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: { ':deleting': 'deleting' },
            },
          },
          { Put: { TableName: table, Item: { pk: GC_QUEUE_KEY, sk: `${deletedAt}#${backup.projectId}#${backup.backupId}`, ...entry } } },
        ],
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof TransactionCanceledException) return false;
    throw err;
  }
}

export async function listGcQueue(ddb: DynamoDBDocumentClient, table: string): Promise<GcQueueEntry[]> {
  const res = await ddb.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :q', ExpressionAttributeValues: { ':q': GC_QUEUE_KEY } }));
  return (res.Items ?? []).map((item) => fromItem<GcQueueEntry>(item));
}

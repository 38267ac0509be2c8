// Jobs: long operations (backup, restore, delete) as the VBS job API shows them.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { fromItem, jobSortKey, projectKey } from './tables.ts';

export type JobStatus = 'INIT' | 'RUNNING' | 'SUCCESS' | 'FAIL';
export type JobType = 'bksCreateBackup' | 'bksRestoreBackup' | 'bksDeleteBackup';

export interface JobRecord {
  projectId: string;
  jobId: string;
  jobType: JobType;
  status: JobStatus;
  /** VBS `entities`: backup_id, volume_id, ... */
  entities: Record<string, string>;
  /** Work done so far and in all, in bytes of the volume (progress = done / total). */
  bytesDone: number;
  bytesTotal: number;
  createdAt: string;
  beginTime?: string;
  endTime?: string;
  errorCode?: string;
  failReason?: string;
  executionArn?: string;
}

export function jobProgress(job: JobRecord): number {
  if (job.status === 'SUCCESS') return 100;
  if (!job.bytesTotal) return 0;
  return Math.min(99, Math.floor((job.bytesDone / job.bytesTotal) * 100));
}

export class JobStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(ddb: DynamoDBDocumentClient, table: string) {
    this.ddb = ddb;
    this.table = table;
  }

  async create(job: JobRecord): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: projectKey(job.projectId), sk: jobSortKey(job.jobId), ...job },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(projectId: string, jobId: string): Promise<JobRecord | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk: projectKey(projectId), sk: jobSortKey(jobId) }, ConsistentRead: true }));
    if (!res.Item) return undefined;
    return fromItem<JobRecord>(res.Item);
  }

  /** Sets fields; a job that already ended (SUCCESS/FAIL) is left alone, so retried tasks cannot reopen it. */
  async update(projectId: string, jobId: string, patch: Partial<Omit<JobRecord, 'projectId' | 'jobId'>>): Promise<boolean> {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
    if (!entries.length) return true;
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: projectKey(projectId), sk: jobSortKey(jobId) },
          UpdateExpression: `SET ${entries.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(pk) AND NOT (#status IN (:done, :failed))',
          ExpressionAttributeNames: { '#status': 'status', ...Object.fromEntries(entries.map(([k], i) => [`#f${i}`, k])) },
          ExpressionAttributeValues: { ':done': 'SUCCESS', ':failed': 'FAIL', ...Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v])) },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /** Adds to the progress counter (atomic, so parallel segments can report). */
  async addProgress(projectId: string, jobId: string, bytes: number): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: projectKey(projectId), sk: jobSortKey(jobId) },
        UpdateExpression: 'ADD bytesDone :n',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':n': bytes },
      }),
    );
  }
}

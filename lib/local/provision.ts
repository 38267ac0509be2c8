// Creates the service's AWS resources on an emulator (local mode, tests, benchmarks): the same bucket,
// tables, key and topic the CDK stack declares on AWS. Idempotent for a given name prefix.
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, NotFoundException } from '@aws-sdk/client-kms';
import { CreateBucketCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import type { AwsClients } from '../aws/clients.ts';
import { CATALOG_INDEXES, CATALOG_KEYS, CHUNK_KEYS } from '../catalog/tables.ts';
import type { AwsServiceConfig } from '../config.ts';

async function ensureTable(clients: AwsClients, input: ConstructorParameters<typeof CreateTableCommand>[0]) {
  try {
    await clients.dynamodb.send(new CreateTableCommand(input));
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  await clients.dynamodb.send(new DescribeTableCommand({ TableName: input.TableName }));
}

async function ensureKey(clients: AwsClients, alias: string): Promise<string> {
  try {
    const res = await clients.kms.send(new DescribeKeyCommand({ KeyId: alias }));
    return res.KeyMetadata!.Arn!;
  } catch (err) {
    if (!(err instanceof NotFoundException)) throw err;
  }
  const key = await clients.kms.send(new CreateKeyCommand({ Description: `OpenVBS service key (${alias})` }));
  await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyMetadata!.KeyId! }));
  return key.KeyMetadata!.Arn!;
}

/** `prefix`: lower-case letters, digits and dashes; names every resource. */
export async function provisionLocalResources(clients: AwsClients, prefix = 'openvbs'): Promise<AwsServiceConfig> {
  const bucket = `${prefix}-data`;
  try {
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!(err instanceof S3ServiceException && (err.name === 'BucketAlreadyOwnedByYou' || err.name === 'BucketAlreadyExists'))) throw err;
  }
  const catalogTable = `${prefix}-catalog`;
  const indexes = Object.values(CATALOG_INDEXES);
  const keyAttributes = new Set([CATALOG_KEYS.partitionKey, CATALOG_KEYS.sortKey, ...indexes.flatMap((index) => [index.partitionKey, index.sortKey])]);
  await ensureTable(clients, {
    TableName: catalogTable,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...keyAttributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: CATALOG_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: CATALOG_KEYS.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: indexes.map((index) => ({
      IndexName: index.indexName,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    })),
  });
  const chunkTable = `${prefix}-chunks`;
  await ensureTable(clients, {
    TableName: chunkTable,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: CHUNK_KEYS.partitionKey, AttributeType: 'S' }],
    KeySchema: [{ AttributeName: CHUNK_KEYS.partitionKey, KeyType: 'HASH' }],
  });
  const serviceKeyId = await ensureKey(clients, `alias/${prefix}-service`);
  const topic = await clients.sns.send(new CreateTopicCommand({ Name: `${prefix}-events` }));
  return { backend: 'aws', bucket, catalogTable, chunkTable, serviceKeyId, topicArn: topic.TopicArn };
}

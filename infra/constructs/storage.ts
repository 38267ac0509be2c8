// Where OpenVBS keeps its state: the service KMS key, the pack/manifest bucket (plus its access-log bucket),
// the DynamoDB catalog and chunk-index tables (design in lib/catalog/tables.ts) and the notification topic.
import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { CfnTable } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { CfnKey } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { CfnTopic } from 'aws-cdk-lib/aws-sns';
import { subscribeOperatorAlerts } from './operator-alerts.ts';
import { Construct } from 'constructs';
import { CATALOG_INDEXES, CATALOG_KEYS, CHUNK_KEYS } from '../../lib/catalog/tables.ts';
import { acknowledgeCheckov } from '../nag.ts';

/** Stable logical ids: the IAM findings acknowledged elsewhere and the local runtime refer to them. */
export const STORAGE_LOGICAL_IDS = {
  key: 'ServiceKey',
  bucket: 'DataBucket',
  logBucket: 'AccessLogBucket',
  catalogTable: 'CatalogTable',
  chunkTable: 'ChunkTable',
  topic: 'NotificationTopic',
} as const;

/**
 * The names of the stack's log groups. Every one lies under one of two prefixes of the stack, and the service
 * key lets CloudWatch Logs encrypt these log groups and no other of the account.
 */
export const LOG_GROUP_NAMES = {
  /** A handler's function log, the API access log. */
  service: (stackName: string, name: string) => `/openvbs/${stackName}/${name}`,
  /** A state machine's log: vended logs under /aws/vendedlogs/ keep the CloudWatch Logs resource policy small. */
  states: (stackName: string, id: string) => `/aws/vendedlogs/states/${stackName}-${id}`,
};

/** How long a deleted pack or manifest stays recoverable as a noncurrent version of the data bucket. */
export const DELETED_OBJECT_RETENTION_DAYS = 30;

export interface StorageProps {
  /** What happens to data (bucket, tables, key) when the stack is deleted. Default RETAIN: backups outlive stacks. */
  removalPolicy?: RemovalPolicy;
}

export class Storage extends Construct {
  readonly key: Key;
  readonly bucket: Bucket;
  readonly logBucket: Bucket;
  readonly catalogTable: Table;
  readonly chunkTable: Table;
  readonly topic: Topic;

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.key = new Key(this, 'ServiceKey', {
      description: 'OpenVBS service key: bucket, tables and topic at rest, and the data keys of volumes without a customer key',
      enableKeyRotation: true,
      removalPolicy,
    });
    (this.key.node.defaultChild as CfnKey).overrideLogicalId(STORAGE_LOGICAL_IDS.key);
    // CloudWatch Logs of this region encrypts the stack's log groups with the key. It names the log group in the
    // encryption context of every call, so the condition holds it to the stack's own log groups.
    const stackName = Stack.of(this).stackName;
    const logGroupArn = (name: string) => `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:${name}`;
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchLogsOfThisStack',
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': [logGroupArn(LOG_GROUP_NAMES.service(stackName, '*')), logGroupArn(LOG_GROUP_NAMES.states(stackName, '*'))] },
        },
      }),
    );

    // S3 server access logs cannot be delivered to an SSE-KMS bucket, so this one uses SSE-S3. (cdk-nag S1 accepts
    // a bucket that is itself the access-log target.)
    this.logBucket = new Bucket(this, 'AccessLogBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(365) },
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy,
    });
    (this.logBucket.node.defaultChild as CfnBucket).overrideLogicalId(STORAGE_LOGICAL_IDS.logBucket);
    acknowledgeCheckov(this.logBucket, 'CKV_AWS_18', 'This is the access-log bucket itself: logging it would log into itself or need a third bucket for the logs of the logs.');
    acknowledgeCheckov(
      this.logBucket,
      'CKV_AWS_21',
      'Server access logs are written once by the S3 logging service (the only writer its bucket policy allows), never overwritten, and expired by the lifecycle rule; versions would add nothing but cost.',
    );

    this.bucket = new Bucket(this, 'DataBucket', {
      encryption: BucketEncryption.KMS,
      encryptionKey: this.key,
      // One KMS data key per bucket and period instead of one call per PUT/GET: packs are ~16 MiB, but a
      // restore issues many ranged GETs.
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Packs and manifests are written once; versioning keeps a deleted one (a faulty GC, a misused role)
      // recoverable for a while, after which lifecycle removes it for good.
      versioned: true,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'data-bucket/',
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { id: 'expire-deleted-objects', noncurrentVersionExpiration: Duration.days(DELETED_OBJECT_RETENTION_DAYS), expiredObjectDeleteMarker: true },
      ],
      removalPolicy,
    });
    (this.bucket.node.defaultChild as CfnBucket).overrideLogicalId(STORAGE_LOGICAL_IDS.bucket);

    this.catalogTable = new Table(this, 'CatalogTable', {
      partitionKey: { name: CATALOG_KEYS.partitionKey, type: AttributeType.STRING },
      sortKey: { name: CATALOG_KEYS.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      removalPolicy,
    });
    for (const index of Object.values(CATALOG_INDEXES)) {
      this.catalogTable.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }
    (this.catalogTable.node.defaultChild as CfnTable).overrideLogicalId(STORAGE_LOGICAL_IDS.catalogTable);

    this.chunkTable = new Table(this, 'ChunkTable', {
      partitionKey: { name: CHUNK_KEYS.partitionKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      removalPolicy,
    });
    (this.chunkTable.node.defaultChild as CfnTable).overrideLogicalId(STORAGE_LOGICAL_IDS.chunkTable);

    this.topic = new Topic(this, 'NotificationTopic', {
      displayName: 'OpenVBS job notifications',
      masterKey: this.key,
      enforceSSL: true,
    });
    (this.topic.node.defaultChild as CfnTopic).overrideLogicalId(STORAGE_LOGICAL_IDS.topic);
    subscribeOperatorAlerts(this, this.topic);
  }
}

// One NodejsFunction per handler of docs/service-contract.md, each with its own role that holds only what that
// handler needs (see ../handlers.ts). Bundled by the local esbuild (no Docker); `aws:cdk:bundling-stacks=[]`
// skips bundling as everywhere in CDK.
//
// KMS, and why the statements look the way they do:
// - The bucket, the tables and the topic are encrypted with the service key. Their use of the key is granted
//   only through the owning service (`kms:ViaService` = s3 / dynamodb / sns in this region).
// - The engine also calls KMS itself (GenerateDataKey / Decrypt) to create and unwrap a key domain's data key,
//   under the service key or under a customer's key (a volume encrypted with its own KMS key). Customer keys are
//   not known when the stack is deployed, so that statement names the service key and `key/*` of this account
//   and region, and requires the call's encryption context to contain `openvbs:project` (the engine always
//   sends {openvbs:project, openvbs:domain}; see lib/engine/key-domains.ts). A role can therefore not use an
//   arbitrary key of the account for anything but OpenVBS data keys. `kms:ViaService` cannot be used here: the
//   engine calls KMS directly. A customer key must also allow these roles in its key policy (or grant).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CATALOG_INDEXES } from '../../lib/catalog/tables.ts';
import { BUNDLED_WORKER_FILE } from '../../lib/engine/chunk-pool.ts';
import type { HandlerSpec, TableAccess } from '../handlers.ts';
import { HANDLER_SPECS, functionLogicalId, pascalCase } from '../handlers.ts';
import { HANDLER_NAMES } from '../../lib/workflows/registry.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { ESBUILD_BANNER } from '../esbuild-banner.mjs';
import { REASONS, acknowledge, acknowledgeCheckov, acknowledgeWildcardResource } from '../nag.ts';
import type { Storage } from './storage.ts';
import { LOG_GROUP_NAMES, STORAGE_LOGICAL_IDS } from './storage.ts';
import { volumeStatementsFor } from './volume-access.ts';

/** The repository root (holds package-lock.json and functions/). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const CHUNK_WORKER_ENTRY = fileURLToPath(new URL('../../lib/engine/chunk-worker.ts', import.meta.url));

export interface ServiceFunctionsProps {
  storage: Storage;
  /** Handlers to build; default all of HANDLER_NAMES. */
  handlers?: readonly HandlerName[];
  /** Folder with `<name>.ts` entries; default `<repo>/functions`. Must lie under projectRoot. */
  functionsDir?: string;
  /** esbuild project root (holds package-lock.json); default the repository root. */
  projectRoot?: string;
  logRetention?: RetentionDays;
}

export class ServiceFunctions extends Construct {
  private readonly byName = new Map<HandlerName, NodejsFunction>();

  constructor(scope: Construct, id: string, props: ServiceFunctionsProps) {
    super(scope, id);
    const projectRoot = props.projectRoot ?? REPO_ROOT;
    const functionsDir = props.functionsDir ?? path.join(projectRoot, 'functions');
    const { storage } = props;
    const baseEnv = {
      OPENVBS_BUCKET: storage.bucket.bucketName,
      OPENVBS_CATALOG_TABLE: storage.catalogTable.tableName,
      OPENVBS_CHUNK_TABLE: storage.chunkTable.tableName,
      OPENVBS_SERVICE_KEY_ID: storage.key.keyArn,
      OPENVBS_TOPIC_ARN: storage.topic.topicArn,
      POWERTOOLS_SERVICE_NAME: 'openvbs',
      // Servers and disks are EC2 instances and EBS volumes (lib/wiring/volumes.ts); IAM in ./volume-access.ts.
      OPENVBS_VOLUME_PROVIDER: 'ebs',
      // A segment task has about one vCPU's worth of CPU (1769 MB): chunk work runs inline, not in worker threads.
      OPENVBS_CHUNK_WORKERS: '0',
      NODE_OPTIONS: '--enable-source-maps',
    };

    for (const name of props.handlers ?? HANDLER_NAMES) {
      const spec = HANDLER_SPECS[name];
      const logicalId = functionLogicalId(name);
      const entry = path.join(functionsDir, `${name}.ts`);
      if (!fs.existsSync(entry)) throw new Error(`OpenVBS: handler entry ${entry} does not exist`);

      const logGroup = new LogGroup(this, `${pascalCase(name)}Logs`, {
        logGroupName: LOG_GROUP_NAMES.service(Stack.of(this).stackName, name),
        encryptionKey: storage.key,
        retention: props.logRetention ?? RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const role = new Role(this, `${pascalCase(name)}Role`, {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
        description: `OpenVBS ${name} handler`,
      });
      (role.node.defaultChild as CfnRole).overrideLogicalId(`${logicalId}Role`);
      // Instead of AWSLambdaBasicExecutionRole: write to this function's own log group only.
      logGroup.grantWrite(role);
      const deadLetterQueue = spec.invocation === 'async' ? this.deadLetterQueue(name, storage) : undefined;

      const fn = new NodejsFunction(this, pascalCase(name), {
        entry,
        handler: 'handler',
        projectRoot,
        depsLockFilePath: path.join(projectRoot, 'package-lock.json'),
        description: `OpenVBS ${name}`,
        runtime: Runtime.NODEJS_22_X,
        architecture: Architecture.ARM_64,
        memorySize: spec.memoryMb,
        timeout: Duration.seconds(spec.timeoutSeconds),
        reservedConcurrentExecutions: spec.reservedConcurrency,
        ...(deadLetterQueue ? { deadLetterQueue } : {}),
        role,
        logGroup,
        loggingFormat: LoggingFormat.JSON,
        tracing: Tracing.ACTIVE,
        environment: { ...baseEnv, OPENVBS_HANDLER: name },
        bundling: {
          format: OutputFormat.ESM,
          target: 'node22',
          mainFields: ['module', 'main'],
          banner: ESBUILD_BANNER,
          minify: true,
          sourceMap: true,
          forceDockerBundling: false,
          // The pinned SDK versions of package-lock.json, not whatever the runtime ships.
          bundleAwsSDK: true,
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (inputDir, outputDir) => [chunkWorkerBundleCommand(projectRoot, inputDir, outputDir)],
          },
        },
      });
      (fn.node.defaultChild as CfnFunction).overrideLogicalId(logicalId);
      for (const statement of statementsFor(spec, storage)) role.addToPrincipalPolicy(statement);
      for (const statement of volumeStatementsFor(name, role)) role.addToPrincipalPolicy(statement);
      // The API makes notification subscriptions: SNS subscriptions on the topic (lib/aws/sns-subscriptions.ts);
      // SNS authorizes the subscription actions against the topic.
      if (name === 'api') {
        role.addToPrincipalPolicy(
          new PolicyStatement({ sid: 'NotificationSubscriptions', effect: Effect.ALLOW, actions: ['sns:Subscribe', 'sns:Unsubscribe', 'sns:GetSubscriptionAttributes'], resources: [storage.topic.topicArn] }),
        );
      }

      acknowledge(fn, 'L1', REASONS.runtime);
      acknowledgeCheckov(
        fn,
        'CKV_AWS_117',
        'OpenVBS runs no network of its own: every call goes to a regional AWS endpoint (S3, DynamoDB, KMS, SNS) under IAM and TLS. A VPC would add NAT gateways or interface endpoints, their cost and cold-start latency, and protect nothing.',
      );
      acknowledgeCheckov(
        fn,
        'CKV_AWS_173',
        'The variables hold resource names, ARNs and tuning knobs, no secret (tokens are hashed in the catalog, data keys wrapped by KMS); Lambda encrypts them at rest with its AWS managed key. A customer key would add a KMS grant per function and a decrypt per cold start and protect nothing secret.',
      );
      if (spec.invocation === 'sync') {
        acknowledgeCheckov(
          fn,
          'CKV_AWS_116',
          'Invoked synchronously (a Step Functions task or API Gateway), where Lambda never uses a dead-letter queue: the caller receives the error, and the state machine retries it or runs the failure path.',
        );
      }
      acknowledgeWildcardResource(role, '*', REASONS.xray);
      if (spec.bucket.read || spec.bucket.write) {
        acknowledgeWildcardResource(
          role,
          `<${STORAGE_LOGICAL_IDS.bucket}.Arn>/*`,
          'Pack and manifest object keys are content- and backup-derived (packs/<domain>/…, manifests/<backup>/…); object actions are granted on the one data bucket only.',
        );
      }
      for (const prefix of spec.bucket.deletePrefixes ?? []) {
        acknowledgeWildcardResource(
          role,
          `<${STORAGE_LOGICAL_IDS.bucket}.Arn>/${prefix}*`,
          `Garbage collection deletes the packs and manifests no backup references; which ones is known at run time only, and ${prefix} is the narrowest prefix that holds them.`,
        );
      }
      if (spec.dataKeys !== 'none') {
        acknowledgeWildcardResource(
          role,
          'arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*',
          'Customer KMS keys of encrypted volumes are chosen at run time; the statement only allows data-key calls whose encryption context carries openvbs:project (see infra/constructs/functions.ts), and each customer key policy must also allow the role.',
        );
      }
      this.byName.set(name, fn);
    }
  }

  /** Where an asynchronously invoked handler's events go after Lambda's retries: kept 14 days to be redriven. */
  private deadLetterQueue(name: HandlerName, storage: Storage): Queue {
    return new Queue(this, `${pascalCase(name)}DeadLetters`, {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: storage.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
  }

  /** The function of a handler (throws when the construct was built without it). */
  fn(name: HandlerName): NodejsFunction {
    const fn = this.byName.get(name);
    if (!fn) throw new Error(`OpenVBS: no function for handler ${name}`);
    return fn;
  }

  has(name: HandlerName): boolean {
    return this.byName.has(name);
  }

  get names(): HandlerName[] {
    return [...this.byName.keys()];
  }
}

/**
 * Chunk worker threads load a file of their own (lib/engine/chunk-pool.ts): bundled beside the handler's index.mjs,
 * as BUNDLED_WORKER_FILE, with the same esbuild the handler was bundled with.
 */
function chunkWorkerBundleCommand(projectRoot: string, inputDir: string, outputDir: string): string {
  const entry = path.posix.join(inputDir, path.relative(projectRoot, CHUNK_WORKER_ENTRY).split(path.sep).join('/'));
  const out = path.posix.join(outputDir, BUNDLED_WORKER_FILE);
  const args = ['--bundle', entry, '--platform=node', '--format=esm', '--target=node22', '--minify', '--sourcemap', `--outfile=${out}`, `--banner:js=${ESBUILD_BANNER}`, '--log-level=warning'];
  return ['npx', '--no-install', 'esbuild', ...args.map((arg) => JSON.stringify(arg))].join(' ');
}

const TABLE_READ = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];
// TransactWriteItems is authorised per item by these actions.
const TABLE_WRITE = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem'];

function tableActions(access: TableAccess): string[] {
  switch (access) {
    case 'none':
      return [];
    case 'getItem':
      return ['dynamodb:GetItem'];
    case 'read':
      return TABLE_READ;
    case 'readWrite':
      return [...TABLE_READ, ...TABLE_WRITE];
    case 'maintain':
      return [...TABLE_READ, 'dynamodb:Scan', ...TABLE_WRITE];
  }
}

function viaService(service: string): Record<string, Record<string, string>> {
  return { StringEquals: { 'kms:ViaService': `${service}.${Aws.REGION}.amazonaws.com` } };
}

/** The least-privilege statements of one handler (logs and X-Ray are added by the function itself). */
export function statementsFor(spec: HandlerSpec, storage: Storage): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  const key = storage.key.keyArn;

  const catalogActions = tableActions(spec.catalog);
  if (catalogActions.length) {
    const resources = [storage.catalogTable.tableArn];
    // The GSI is only read by Query.
    if (catalogActions.includes('dynamodb:Query')) {
      for (const index of Object.values(CATALOG_INDEXES)) resources.push(`${storage.catalogTable.tableArn}/index/${index.indexName}`);
    }
    statements.push(new PolicyStatement({ sid: 'CatalogTable', effect: Effect.ALLOW, actions: catalogActions, resources }));
  }
  const chunkActions = tableActions(spec.chunks);
  if (chunkActions.length) {
    statements.push(new PolicyStatement({ sid: 'ChunkTable', effect: Effect.ALLOW, actions: chunkActions, resources: [storage.chunkTable.tableArn] }));
  }
  const tableWrites = spec.catalog === 'readWrite' || spec.chunks === 'readWrite' || spec.chunks === 'maintain';
  if (catalogActions.length || chunkActions.length) {
    statements.push(
      new PolicyStatement({
        sid: 'ServiceKeyViaDynamoDB',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt', 'kms:DescribeKey', ...(tableWrites ? ['kms:Encrypt', 'kms:GenerateDataKey'] : [])],
        resources: [key],
        conditions: viaService('dynamodb'),
      }),
    );
  }

  const { read, write, deletePrefixes = [] } = spec.bucket;
  if (deletePrefixes.length) {
    statements.push(
      new PolicyStatement({
        sid: 'DataBucketDelete',
        effect: Effect.ALLOW,
        actions: ['s3:DeleteObject'],
        resources: deletePrefixes.map((prefix) => storage.bucket.arnForObjects(`${prefix}*`)),
      }),
    );
    // Finding what to delete lists those prefixes and nothing else (a reader or writer lists the bucket below).
    if (!read && !write) {
      statements.push(
        new PolicyStatement({
          sid: 'DataBucketList',
          effect: Effect.ALLOW,
          actions: ['s3:ListBucket'],
          resources: [storage.bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': deletePrefixes.map((prefix) => `${prefix}*`) } },
        }),
      );
    }
  }
  if (read || write) {
    const objects = storage.bucket.arnForObjects('*');
    const objectActions = [...(read ? ['s3:GetObject'] : []), ...(write ? ['s3:PutObject'] : [])];
    statements.push(new PolicyStatement({ sid: 'DataBucketObjects', effect: Effect.ALLOW, actions: objectActions, resources: [objects] }));
    // ListBucket: prefix listings (manifests) and a 404 rather than a 403 for a missing object.
    statements.push(new PolicyStatement({ sid: 'DataBucketList', effect: Effect.ALLOW, actions: ['s3:ListBucket'], resources: [storage.bucket.bucketArn] }));
    statements.push(
      new PolicyStatement({
        sid: 'ServiceKeyViaS3',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt', ...(write ? ['kms:GenerateDataKey'] : [])],
        resources: [key],
        conditions: viaService('s3'),
      }),
    );
  }

  if (spec.dataKeys !== 'none') {
    statements.push(
      new PolicyStatement({
        sid: 'DataKeys',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt', ...(spec.dataKeys === 'generate' ? ['kms:GenerateDataKey'] : [])],
        resources: [key, `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`],
        conditions: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ['openvbs:project'] } },
      }),
    );
  }

  if (spec.invocation === 'async') {
    // The dead-letter queue is encrypted with the service key; Lambda sends to it with the function's role.
    statements.push(
      new PolicyStatement({
        sid: 'ServiceKeyViaSQS',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [key],
        conditions: viaService('sqs'),
      }),
    );
  }

  if (spec.publish) {
    statements.push(new PolicyStatement({ sid: 'PublishNotifications', effect: Effect.ALLOW, actions: ['sns:Publish'], resources: [storage.topic.topicArn] }));
    statements.push(
      new PolicyStatement({
        sid: 'ServiceKeyViaSNS',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [key],
        conditions: viaService('sns'),
      }),
    );
  }
  return statements;
}

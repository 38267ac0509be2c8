// OpenVbsStack resources: storage, functions (runtime, logging, tracing, environment, least privilege), the
// REST API and the policy schedule. Synthesized in-process with bundling skipped.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { HANDLER_SPECS, functionLogicalId } from '../../infra/handlers.ts';
import { DELETED_OBJECT_RETENTION_DAYS } from '../../infra/constructs/storage.ts';
import { HANDLER_NAMES, WORKFLOWS, WORKFLOW_NAMES, stateMachineLogicalId } from '../../lib/workflows/registry.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { ENDED_BADLY } from '../../lib/workflows/steps/execution-failed.ts';
import type { CfnTemplate } from '../../infra/synth.ts';
import { actionsOf, joinIntrinsic, resourcesOf, roleStatements, template } from './helpers.ts';

let tpl: CfnTemplate;
let t: Template;

beforeAll(() => {
  tpl = template();
  t = Template.fromJSON(tpl);
});

const keyArn = { 'Fn::GetAtt': ['ServiceKey', 'Arn'] };

describe('storage', () => {
  it('encrypts the data bucket with the service key, blocks public access and logs access', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn }, BucketKeyEnabled: true },
        ],
      },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: { DestinationBucketName: { Ref: 'AccessLogBucket' } },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' })]),
      },
    });
    expect(tpl.Resources.DataBucket?.DeletionPolicy).toBe('Retain');
  });

  it('denies non-TLS requests on both buckets', () => {
    for (const bucket of ['DataBucket', 'AccessLogBucket']) {
      t.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: bucket },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('keeps the access-log bucket private and encrypted', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
  });

  it('creates the catalog table with pk/sk and gsi1, on demand, with PITR and SSE-KMS', () => {
    expect(tpl.Resources.CatalogTable?.Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });

  it('creates the chunk table keyed by pk, on demand, with PITR and SSE-KMS', () => {
    expect(tpl.Resources.ChunkTable?.Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn },
    });
  });

  it('versions the data bucket and expires what was deleted after a retention period', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: DELETED_OBJECT_RETENTION_DAYS }, ExpiredObjectDeleteMarker: true, Status: 'Enabled' }),
        ]),
      },
    });
  });

  it('lets CloudWatch Logs use the service key for the stack\'s own log groups only', () => {
    const policy = tpl.Resources.ServiceKey!.Properties!.KeyPolicy as { Statement: Array<Record<string, unknown>> };
    const logs = policy.Statement.find((s) => s.Sid === 'CloudWatchLogsOfThisStack')!;
    expect(joinIntrinsic((logs.Principal as { Service: unknown }).Service)).toBe('logs.<AWS::Region>.amazonaws.com');
    expect(logs.Action).not.toContain('kms:*');
    const arns = (logs.Condition as { ArnLike: Record<string, unknown[]> }).ArnLike['kms:EncryptionContext:aws:logs:arn']!.map(joinIntrinsic);
    expect(arns).toEqual([
      'arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/openvbs/OpenVbsStack/*',
      'arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/vendedlogs/states/OpenVbsStack-*',
    ]);
    const logGroups = Object.values(tpl.Resources).filter((r) => r.Type === 'AWS::Logs::LogGroup');
    expect(logGroups).toHaveLength(HANDLER_NAMES.length + WORKFLOW_NAMES.length + 1);
    for (const group of logGroups) {
      expect(group.Properties!.KmsKeyId).toEqual(keyArn);
      expect(group.Properties!.LogGroupName).toMatch(/^(\/openvbs\/OpenVbsStack\/|\/aws\/vendedlogs\/states\/OpenVbsStack-)/);
    }
  });

  it('rotates the service key', () => {
    t.resourceCountIs('AWS::KMS::Key', 1);
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('encrypts the topic with the service key and requires TLS to publish', () => {
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: keyArn });
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('functions', () => {
  it('has one function per contract handler, with a stable logical id', () => {
    t.resourceCountIs('AWS::Lambda::Function', HANDLER_NAMES.length);
    for (const name of HANDLER_NAMES) expect(tpl.Resources[functionLogicalId(name)]?.Type, name).toBe('AWS::Lambda::Function');
  });

  it.each(HANDLER_NAMES)('%s: nodejs22.x on arm64, JSON logs, active tracing, sized per contract, OPENVBS_HANDLER set', (name) => {
    const props = tpl.Resources[functionLogicalId(name)]!.Properties!;
    const segment = name === 'backup-segment' || name === 'restore-segment' || name === 'check-run' || name === 'gc-run'; // one vCPU for chunk work
    expect(props).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      LoggingConfig: { LogFormat: 'JSON' },
      TracingConfig: { Mode: 'Active' },
      MemorySize: segment ? 1769 : 512,
      Timeout: HANDLER_SPECS[name].timeoutSeconds,
      ReservedConcurrentExecutions: HANDLER_SPECS[name].reservedConcurrency,
    });
    expect(HANDLER_SPECS[name].memoryMb).toBe(props.MemorySize);
    const env = (props.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({
      OPENVBS_HANDLER: name,
      OPENVBS_BUCKET: { Ref: 'DataBucket' },
      OPENVBS_CATALOG_TABLE: { Ref: 'CatalogTable' },
      OPENVBS_CHUNK_TABLE: { Ref: 'ChunkTable' },
      OPENVBS_SERVICE_KEY_ID: keyArn,
      OPENVBS_TOPIC_ARN: { Ref: 'NotificationTopic' },
      POWERTOOLS_SERVICE_NAME: 'openvbs',
      OPENVBS_CHUNK_WORKERS: '0',
    });
    const hasWorkflowArns = 'OPENVBS_WORKFLOW_VOLUME_BACKUP_ARN' in env;
    expect(hasWorkflowArns).toBe(name === 'api' || name === 'execution-failed' || name === 'policy-tick');
  });

  it('bounds every function: segment tasks at 100, the api at 50, and leaves the account its unreserved 100', () => {
    expect(HANDLER_SPECS['backup-segment'].reservedConcurrency).toBe(100);
    expect(HANDLER_SPECS['restore-segment'].reservedConcurrency).toBe(100);
    expect(HANDLER_SPECS.api.reservedConcurrency).toBe(50);
    const total = HANDLER_NAMES.reduce((sum, name) => sum + HANDLER_SPECS[name].reservedConcurrency, 0);
    // An account's default concurrency is 1,000, of which Lambda keeps 100 unreserved.
    expect(total).toBe(453);
    expect(total).toBeLessThanOrEqual(900);
  });

  it('writes every function log to its own log group under the stack prefix, encrypted with the service key', () => {
    for (const name of HANDLER_NAMES) {
      const logGroupRef = (tpl.Resources[functionLogicalId(name)]!.Properties!.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(tpl.Resources[logGroupRef]!.Properties).toMatchObject({ LogGroupName: `/openvbs/OpenVbsStack/${name}`, KmsKeyId: keyArn, RetentionInDays: 30 });
    }
  });

  it('gives the asynchronously invoked functions a dead-letter queue encrypted with the service key, and only those', () => {
    const asyncHandlers = HANDLER_NAMES.filter((name) => HANDLER_SPECS[name].invocation === 'async');
    expect(asyncHandlers.sort()).toEqual(['check-run', 'execution-failed', 'gc-run', 'policy-tick']);
    for (const name of HANDLER_NAMES) {
      const dlc = tpl.Resources[functionLogicalId(name)]!.Properties!.DeadLetterConfig as { TargetArn: { 'Fn::GetAtt': [string, string] } } | undefined;
      if (!asyncHandlers.includes(name)) {
        expect(dlc, name).toBeUndefined();
        continue;
      }
      const queueId = dlc!.TargetArn['Fn::GetAtt'][0];
      expect(tpl.Resources[queueId]!.Properties).toMatchObject({ KmsMasterKeyId: keyArn, MessageRetentionPeriod: 14 * 24 * 3600 });
      t.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
      const send = roleStatements(tpl, `${functionLogicalId(name)}Role`).filter((s) => actionsOf(s).includes('sqs:SendMessage'));
      expect(send.flatMap(resourcesOf)).toEqual([{ 'Fn::GetAtt': [queueId, 'Arn'] }]);
    }
  });

  it('gives the api function the three state machine ARNs', () => {
    expect((tpl.Resources.FnApi!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({
      OPENVBS_WORKFLOW_VOLUME_BACKUP_ARN: { Ref: 'VolumeBackupStateMachine' },
      OPENVBS_WORKFLOW_VOLUME_RESTORE_ARN: { Ref: 'VolumeRestoreStateMachine' },
      OPENVBS_WORKFLOW_BACKUP_DELETE_ARN: { Ref: 'BackupDeleteStateMachine' },
    });
  });

  it('gives every function its own role without managed policies', () => {
    for (const name of HANDLER_NAMES) {
      const fn = tpl.Resources[functionLogicalId(name)]!;
      expect(fn.Properties!.Role).toEqual({ 'Fn::GetAtt': [`${functionLogicalId(name)}Role`, 'Arn'] });
      expect(tpl.Resources[`${functionLogicalId(name)}Role`]!.Properties!.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('least privilege', () => {
  const statements = (name: (typeof HANDLER_NAMES)[number]) => roleStatements(tpl, `${functionLogicalId(name)}Role`);
  const actions = (name: (typeof HANDLER_NAMES)[number]) => statements(name).flatMap(actionsOf);

  it('never grants a wildcard action', () => {
    for (const name of HANDLER_NAMES) for (const action of actions(name)) expect(action, `${name}: ${action}`).not.toContain('*');
  });

  it('notify may publish to the topic only, and touches no S3 or other table', () => {
    const stmts = statements('notify');
    const publish = stmts.filter((s) => actionsOf(s).includes('sns:Publish'));
    expect(publish).toHaveLength(1);
    expect(actionsOf(publish[0]!)).toEqual(['sns:Publish']);
    expect(resourcesOf(publish[0]!)).toEqual([{ Ref: 'NotificationTopic' }]);
    const all = actions('notify');
    expect(all.filter((a) => a.startsWith('s3:'))).toEqual([]);
    expect(all.filter((a) => a.startsWith('dynamodb:'))).toEqual(['dynamodb:GetItem']);
    expect(all.filter((a) => a.startsWith('states:'))).toEqual([]);
  });

  it('api may start the three state machines and stop their executions only, and uses only the catalog table', () => {
    const states = statements('api').filter((s) => actionsOf(s).some((a) => a.startsWith('states:')));
    expect([...new Set(states.flatMap(actionsOf))].sort()).toEqual(['states:StartExecution', 'states:StopExecution']);
    const stop = states.filter((s) => actionsOf(s).includes('states:StopExecution'));
    expect(stop.flatMap(resourcesOf)).toHaveLength(6);
    for (const resource of stop.flatMap(resourcesOf)) expect(JSON.stringify(resource)).toMatch(/:execution:.*StateMachine.*:\*/);
    const start = states.filter((s) => actionsOf(s).includes('states:StartExecution'));
    expect(start.flatMap(resourcesOf)).toEqual(
      expect.arrayContaining(WORKFLOW_NAMES.map((w) => ({ Ref: stateMachineLogicalId(w) }))),
    );
    expect(start.flatMap(resourcesOf)).toHaveLength(WORKFLOW_NAMES.length);
    const all = actions('api');
    // sns: only the notification subscriptions (test/infra/notifications.test.ts), never Publish
    expect(all.filter((a) => a.startsWith('s3:') || a === 'sns:Publish')).toEqual([]);
    const tables = statements('api').filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:'))).flatMap(resourcesOf);
    expect(JSON.stringify(tables)).not.toContain('ChunkTable');
  });

  it('policy-tick may start backups and deletes only (a policy run and its retention), and stop nothing', () => {
    const states = statements('policy-tick').filter((s) => actionsOf(s).some((a) => a.startsWith('states:')));
    expect([...new Set(states.flatMap(actionsOf))]).toEqual(['states:StartExecution']);
    expect(states.flatMap(resourcesOf)).toEqual([
      { Ref: 'VolumeBackupStateMachine' },
      { Ref: 'BackupDeleteStateMachine' },
      { Ref: 'ServerBackupStateMachine' },
      { Ref: 'CheckpointDeleteStateMachine' },
    ]);
  });

  it('authorizer may only GetItem on the catalog table', () => {
    const ddb = statements('authorizer').filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(ddb).toHaveLength(1);
    expect(actionsOf(ddb[0]!)).toEqual(['dynamodb:GetItem']);
    expect(resourcesOf(ddb[0]!)).toEqual([{ 'Fn::GetAtt': ['CatalogTable', 'Arn'] }]);
    expect(actions('authorizer').filter((a) => /^(s3|sns|states):/.test(a))).toEqual([]);
  });

  it('uses the service key for tables, bucket and topic only through those services', () => {
    for (const name of HANDLER_NAMES) {
      for (const s of statements(name)) {
        if (!s.Sid?.startsWith('ServiceKeyVia')) continue;
        expect(resourcesOf(s)).toEqual([keyArn]);
        expect(Object.keys((s.Condition as { StringEquals: Record<string, unknown> }).StringEquals)).toEqual(['kms:ViaService']);
      }
    }
  });

  it('segment tasks read/write the bucket objects and use data keys scoped by the openvbs:project context', () => {
    const backup = statements('backup-segment');
    const objects = backup.find((s) => s.Sid === 'DataBucketObjects')!;
    expect(actionsOf(objects).sort()).toEqual(['s3:GetObject', 's3:PutObject']);
    expect(resourcesOf(objects)).toEqual([{ 'Fn::Join': ['', [{ 'Fn::GetAtt': ['DataBucket', 'Arn'] }, '/*']] }]);
    const restoreObjects = statements('restore-segment').find((s) => s.Sid === 'DataBucketObjects')!;
    expect(actionsOf(restoreObjects)).toEqual(['s3:GetObject']);
    for (const name of ['backup-segment', 'restore-segment', 'backup-prepare'] as const) {
      const dataKeys = statements(name).find((s) => s.Sid === 'DataKeys')!;
      expect(dataKeys.Condition).toEqual({ 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ['openvbs:project'] } });
      expect(resourcesOf(dataKeys)[0]).toEqual(keyArn);
    }
    expect(actionsOf(statements('backup-prepare').find((s) => s.Sid === 'DataKeys')!).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(actionsOf(statements('backup-segment').find((s) => s.Sid === 'DataKeys')!)).toEqual(['kms:Decrypt']);
  });

  it('only handlers that need them get S3, the chunk table or data keys', () => {
    const s3 = HANDLER_NAMES.filter((n) => actions(n).some((a) => a.startsWith('s3:')));
    expect(s3.sort()).toEqual(['backup-segment', 'check-run', 'gc-run', 'restore-segment']);
    const chunks = HANDLER_NAMES.filter((n) => JSON.stringify(statements(n)).includes('ChunkTable'));
    expect(chunks.sort()).toEqual(['backup-segment', 'check-run', 'gc-run', 'restore-segment']);
    const dataKeys = HANDLER_NAMES.filter((n) => statements(n).some((s) => s.Sid === 'DataKeys'));
    expect(dataKeys.sort()).toEqual(['backup-prepare', 'backup-segment', 'check-run', 'gc-run', 'restore-segment', 'server-backup-prepare']);
    const publish = HANDLER_NAMES.filter((n) => actions(n).includes('sns:Publish'));
    expect(publish.sort()).toEqual(['check-run', 'execution-failed', 'gc-run', 'notify']);
  });

  it('lets only the garbage collector delete from the bucket (packs and manifests) and scan the chunk table', () => {
    const deleters = HANDLER_NAMES.filter((n) => actions(n).some((a) => /^s3:Delete/.test(a)));
    expect(deleters).toEqual(['gc-run']);
    const del = statements('gc-run').find((s) => s.Sid === 'DataBucketDelete')!;
    expect(actionsOf(del)).toEqual(['s3:DeleteObject']);
    expect(resourcesOf(del)).toEqual(['packs/*', 'manifests/*'].map((p) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': ['DataBucket', 'Arn'] }, `/${p}`]] })));
    const chunkScanners = HANDLER_NAMES.filter((n) => statements(n).some((s) => s.Sid === 'ChunkTable' && actionsOf(s).includes('dynamodb:Scan')));
    expect(chunkScanners).toEqual(['gc-run']);
    for (const name of ['backup-fail', 'execution-failed'] as const) expect(actions(name).filter((a) => a.startsWith('s3:')), name).toEqual([]);
  });

  it('execution-failed holds what the three fail steps and notify hold, and no Step Functions right', () => {
    const union = new Set((['backup-fail', 'restore-fail', 'delete-fail', 'server-backup-fail', 'notify'] as HandlerName[]).flatMap(actions));
    const own = actions('execution-failed').filter((a) => !/^(xray|logs|sqs):/.test(a));
    for (const action of own) expect(union.has(action) || action.startsWith('kms:'), action).toBe(true);
    expect(own.filter((a) => a.startsWith('states:'))).toEqual([]);
    expect(statements('execution-failed').find((s) => s.Sid === 'ServiceKeyViaSQS')!.Condition).toEqual({
      StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['sqs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
    });
    const env = (tpl.Resources.FnExecutionFailed!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
    for (const workflow of WORKFLOW_NAMES) expect(env[WORKFLOWS[workflow].arnEnv]).toEqual({ Ref: stateMachineLogicalId(workflow) });
  });
});

describe('api', () => {
  it('has a TOKEN authorizer on X-Auth-Token backed by the authorizer function', () => {
    t.resourceCountIs('AWS::ApiGateway::Authorizer', 1);
    const [authorizerId, authorizer] = Object.entries(tpl.Resources).find(([, r]) => r.Type === 'AWS::ApiGateway::Authorizer')!;
    expect(authorizer.Properties).toMatchObject({ Type: 'TOKEN', IdentitySource: 'method.request.header.X-Auth-Token' });
    expect(JSON.stringify(authorizer.Properties!.AuthorizerUri)).toContain('FnAuthorizer');
    const methods = Object.values(tpl.Resources).filter((r) => r.Type === 'AWS::ApiGateway::Method');
    expect(methods).toHaveLength(3);
    for (const m of methods) {
      expect(JSON.stringify(m.Properties!.Integration)).toContain('FnApi');
      expect((m.Properties!.Integration as { Type: string }).Type).toBe('AWS_PROXY');
      const isOpenApi = JSON.stringify(m.Properties!.ResourceId).includes('openapijson');
      if (isOpenApi) {
        expect(m.Properties).toMatchObject({ HttpMethod: 'GET', AuthorizationType: 'NONE' });
      } else {
        expect(m.Properties).toMatchObject({ HttpMethod: 'ANY', AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
      }
    }
  });

  it('proxies every path and serves /openapi.json', () => {
    t.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' });
    t.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'openapi.json' });
  });

  it('logs access, traces, validates requests and answers errors in the API error shape', () => {
    t.hasResourceProperties('AWS::ApiGateway::Stage', {
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
      TracingEnabled: true,
      MethodSettings: Match.arrayWith([Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', LoggingLevel: 'ERROR', DataTraceEnabled: false })]),
    });
    t.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestBody: true, ValidateRequestParameters: true });
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      StatusCode: '401',
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('^\\{"error":\\{"code"') },
    });
  });
});

describe('execution failures', () => {
  it('sends every FAILED, TIMED_OUT or ABORTED execution of the three state machines to execution-failed', () => {
    t.resourceCountIs('AWS::Events::Rule', 4); // and the policy tick, check and GC schedules
    t.hasResourceProperties('AWS::Events::Rule', {
      State: 'ENABLED',
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          status: ['FAILED', 'TIMED_OUT', 'ABORTED'],
          stateMachineArn: WORKFLOW_NAMES.map((workflow) => ({ Ref: stateMachineLogicalId(workflow) })),
        },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': ['FnExecutionFailed', 'Arn'] } })],
    });
    expect([...ENDED_BADLY]).toEqual(['FAILED', 'TIMED_OUT', 'ABORTED']);
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': ['FnExecutionFailed', 'Arn'] },
      Principal: 'events.amazonaws.com',
    });
  });
});

describe('schedules', () => {
  it('runs the integrity check daily, reading 5% of the packs, with read-only rights', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(17 3 * * ? *)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': ['FnCheckRun', 'Arn'] }, Input: JSON.stringify({ readDataPercent: 5 }) })],
    });
    const actions = roleStatements(tpl, 'FnCheckRunRole').flatMap(actionsOf);
    expect(actions.filter((a) => /^(s3|dynamodb):/.test(a) && !/^(s3:(Get|List)|dynamodb:(Get|BatchGet|Query|DescribeTable|ConditionCheck))/.test(a))).toEqual([]);
    expect(actionsOf(roleStatements(tpl, 'FnCheckRunRole').find((s) => s.Sid === 'DataKeys')!)).toEqual(['kms:Decrypt']);
  });
  it('runs garbage collection daily', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(41 2 * * ? *)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': ['FnGcRun', 'Arn'] } })],
    });
    expect(HANDLER_SPECS['gc-run'].reservedConcurrency).toBe(1);
  });
  it('fires policy-tick every 5 minutes', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': ['FnPolicyTick', 'Arn'] } })],
    });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': ['FnPolicyTick', 'Arn'] },
      Principal: 'events.amazonaws.com',
    });
  });
});

// The one place that constructs AWS SDK clients (EC2 and EBS in volume-clients.ts, on the same settings).
// Everything else asks these modules for a client.
// Endpoint, region and credentials come from the standard SDK resolution: AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> point the same code at AWS, LocalStack or the moto emulator.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';

export interface AwsClients {
  s3: S3Client;
  dynamodb: DynamoDBClient;
  /** Document client over `dynamodb` (plain JS values in and out). */
  ddb: DynamoDBDocumentClient;
  kms: KMSClient;
  sns: SNSClient;
  sqs: SQSClient;
  /** Step Functions (the API starts workflow executions). */
  sfn: SFNClient;
}

/** True when an endpoint override is configured, i.e. we talk to an emulator rather than AWS. */
export function usingEndpointOverride(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_S3);
}

/** Region, retries and connection settings every client shares. */
export function commonConfig(env: NodeJS.ProcessEnv) {
  return {
    // Fall back to a region only when none is configured, so local mode works out of the box.
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    maxAttempts: 6,
    retryMode: 'adaptive' as const,
    requestHandler: {
      connectionTimeout: 5_000,
      requestTimeout: 120_000,
      httpAgent: { keepAlive: true, maxSockets: 64 },
      httpsAgent: { keepAlive: true, maxSockets: 64 },
    },
  };
}

export function createClients(env: NodeJS.ProcessEnv = process.env): AwsClients {
  const common = commonConfig(env);
  const dynamodb = new DynamoDBClient(common);
  return {
    // Path-style addressing is needed by emulators; AWS itself keeps virtual-hosted style.
    s3: new S3Client({ ...common, forcePathStyle: usingEndpointOverride(env) }),
    dynamodb,
    ddb: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    kms: new KMSClient(common),
    sns: new SNSClient(common),
    sqs: new SQSClient(common),
    sfn: new SFNClient(common),
  };
}

let shared: AwsClients | undefined;

/** Process-wide clients (reused across Lambda invocations and local requests). */
export function awsClients(): AwsClients {
  shared ??= createClients();
  return shared;
}

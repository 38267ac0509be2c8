// The race's S3 side: one moto emulator for the whole race, and what both tools need around it (credentials
// in the environment, resources for OpenVBS, the size of a bucket, and dropping a round's bucket and
// tables so the emulator's memory stays bounded). Loaded only when the race runs on S3.
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createClients } from '../../lib/aws/clients.ts';
import type { AwsClients } from '../../lib/aws/clients.ts';
import type { AwsServiceConfig } from '../../lib/config.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';
import { startMoto } from '../../scripts/moto.mjs';

export interface S3Side {
  endpoint: string;
  /** What a child needs to reach the emulator (the AWS SDK in OpenVBS, minio-go in restic). */
  env: Record<string, string>;
  /** Sum of the object sizes in `bucket`, and their count. */
  bucketUse(bucket: string): Promise<{ bytes: number; objects: number }>;
  /** OpenVBS's bucket, tables, key and topic for one round. */
  provision(prefix: string): Promise<AwsServiceConfig>;
  /** Removes a bucket with everything in it; with `config`, also OpenVBS's tables. */
  drop(bucket: string, config?: AwsServiceConfig): Promise<void>;
  stop(): Promise<void>;
}

async function* listAll(clients: AwsClients, bucket: string) {
  let token: string | undefined;
  do {
    const page = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    yield* page.Contents ?? [];
    token = page.NextContinuationToken;
  } while (token);
}

export async function startS3Side(): Promise<S3Side> {
  const moto = await startMoto({ quiet: true });
  const env = {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'race',
    AWS_SECRET_ACCESS_KEY: 'race',
  };
  Object.assign(process.env, env);
  delete process.env.AWS_PROFILE;
  const clients = createClients();
  return {
    endpoint: moto.endpoint,
    env,
    async bucketUse(bucket) {
      let bytes = 0;
      let objects = 0;
      for await (const o of listAll(clients, bucket)) {
        bytes += o.Size ?? 0;
        objects++;
      }
      return { bytes, objects };
    },
    provision: (prefix) => provisionLocalResources(clients, prefix),
    async drop(bucket, config) {
      let keys: string[] = [];
      const flush = async () => {
        if (keys.length) await clients.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
        keys = [];
      };
      for await (const o of listAll(clients, bucket)) {
        keys.push(o.Key!);
        if (keys.length === 1000) await flush();
      }
      await flush();
      await clients.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
      if (config) for (const table of [config.catalogTable, config.chunkTable]) await clients.dynamodb.send(new DeleteTableCommand({ TableName: table }));
    },
    stop: () => moto.stop(),
  };
}

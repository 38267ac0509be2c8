// Service configuration from the environment (set by CDK on Lambda, by the local runtime locally).
//
// Two backends run the same code: `aws` (S3, DynamoDB, KMS, SNS through the SDK; AWS_ENDPOINT_URL points it
// at an emulator) and `embedded` (everything under one folder on this machine: SQLite, files, key files).
export type BackendKind = 'aws' | 'embedded';
export const BACKEND_KINDS: readonly BackendKind[] = ['aws', 'embedded'];

export interface AwsServiceConfig {
  backend: 'aws';
  bucket: string;
  catalogTable: string;
  chunkTable: string;
  /** The service's KMS key: wraps the data keys of volumes without a customer key. */
  serviceKeyId: string;
  topicArn?: string;
}

export interface EmbeddedServiceConfig {
  backend: 'embedded';
  /** OPENVBS_HOME: the catalog, chunk index, objects, keys and notifications live under it. */
  home: string;
}

export type ServiceConfig = AwsServiceConfig | EmbeddedServiceConfig;

export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const need = (name: string) => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  const backend = env.OPENVBS_BACKEND ?? 'aws';
  if (backend === 'embedded') return { backend, home: need('OPENVBS_HOME') };
  if (backend !== 'aws') throw new Error(`OPENVBS_BACKEND must be one of ${BACKEND_KINDS.join(', ')}, not "${backend}"`);
  return {
    backend,
    bucket: need('OPENVBS_BUCKET'),
    catalogTable: need('OPENVBS_CATALOG_TABLE'),
    chunkTable: need('OPENVBS_CHUNK_TABLE'),
    serviceKeyId: need('OPENVBS_SERVICE_KEY_ID'),
    topicArn: env.OPENVBS_TOPIC_ARN || undefined,
  };
}

export function serviceConfigEnv(config: ServiceConfig): Record<string, string> {
  if (config.backend === 'embedded') return { OPENVBS_BACKEND: 'embedded', OPENVBS_HOME: config.home };
  return {
    OPENVBS_BACKEND: 'aws',
    OPENVBS_BUCKET: config.bucket,
    OPENVBS_CATALOG_TABLE: config.catalogTable,
    OPENVBS_CHUNK_TABLE: config.chunkTable,
    OPENVBS_SERVICE_KEY_ID: config.serviceKeyId,
    ...(config.topicArn ? { OPENVBS_TOPIC_ARN: config.topicArn } : {}),
  };
}

// Service configuration from the environment (set by CDK on Lambda, by the local runtime locally).
export interface ServiceConfig {
  bucket: string;
  catalogTable: string;
  chunkTable: string;
  /** The service's KMS key: wraps the data keys of volumes without a customer key. */
  serviceKeyId: string;
  topicArn?: string;
}

export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const need = (name: string) => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  return {
    bucket: need('OPENVBS_BUCKET'),
    catalogTable: need('OPENVBS_CATALOG_TABLE'),
    chunkTable: need('OPENVBS_CHUNK_TABLE'),
    serviceKeyId: need('OPENVBS_SERVICE_KEY_ID'),
    topicArn: env.OPENVBS_TOPIC_ARN || undefined,
  };
}

export function serviceConfigEnv(config: ServiceConfig): Record<string, string> {
  return {
    OPENVBS_BUCKET: config.bucket,
    OPENVBS_CATALOG_TABLE: config.catalogTable,
    OPENVBS_CHUNK_TABLE: config.chunkTable,
    OPENVBS_SERVICE_KEY_ID: config.serviceKeyId,
    ...(config.topicArn ? { OPENVBS_TOPIC_ARN: config.topicArn } : {}),
  };
}

// DynamoDB table design, shared by the local provisioning and the CDK stack.
//
// catalog table (OPENVBS_CATALOG_TABLE) — single table, keys `pk` (S) + `sk` (S):
//   backup       pk "P#<project>"   sk "BACKUP#<backupId>"
//                gsi1pk "VOL#<project>#<volumeId>"  gsi1sk "<createdAt ISO>#<backupId>"  (a volume's backups by time)
//   key domain   pk "P#<project>"   sk "DOMAIN#<kmsKeyId>"   (wrapped data key; one per project and KMS key)
//   The service layer adds jobs, volumes and tokens to the same table under their own sk prefixes.
// GSI `gsi1` (gsi1pk, gsi1sk), projection ALL.
//
// chunks table (OPENVBS_CHUNK_TABLE) — key `pk` (S) = "<domainId>#<chunk id hex>"; see dynamo-chunk-index.ts.
export const CATALOG_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;
export const CATALOG_GSI1 = { indexName: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' } as const;
/**
 * The catalog table's secondary indexes: the one list the DynamoDB table (CDK stack, provisioning) and the
 * SQLite adapter are built from. An item appears in an index when it has both of the index's key attributes.
 */
export const CATALOG_INDEXES = { gsi1: CATALOG_GSI1 } as const;
export type CatalogIndexName = keyof typeof CATALOG_INDEXES;
export const CHUNK_KEYS = { partitionKey: 'pk' } as const;

export const projectKey = (projectId: string) => `P#${projectId}`;
export const backupSortKey = (backupId: string) => `BACKUP#${backupId}`;
export const domainSortKey = (kmsKeyId: string) => `DOMAIN#${kmsKeyId}`;
export const volumeBackupsKey = (projectId: string, volumeId: string) => `VOL#${projectId}#${volumeId}`;
//   job          pk "P#<project>"   sk "JOB#<jobId>"          (jobs.ts)
//   volume       pk "P#<project>"   sk "VOLUME#<volumeId>"    (volumes.ts, local-mode inventory)
//   token        pk "TOKEN#<sha256 of token>"  sk "TOKEN"     (tokens.ts; the token itself is never stored)
export const jobSortKey = (jobId: string) => `JOB#${jobId}`;
export const volumeSortKey = (volumeId: string) => `VOLUME#${volumeId}`;
export const tokenKey = (tokenHash: string) => `TOKEN#${tokenHash}`;

const KEY_ATTRS = ['pk', 'sk', 'gsi1pk', 'gsi1sk'];

/** The stored record of an item: its attributes without the table's key attributes. */
export function fromItem<T>(item: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...item };
  for (const k of KEY_ATTRS) delete out[k];
  return out as T;
}

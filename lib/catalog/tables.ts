// Catalog table design, shared by the DynamoDB table (CDK stack, local provisioning), the SQLite table and
// the stores. The stores reach the table only through the port in table.ts.
//
// catalog table (OPENVBS_CATALOG_TABLE) — single table, keys `pk` (S) + `sk` (S):
//   backup       pk "P#<project>"   sk "BACKUP#<backupId>"                      (backups.ts)
//                gsi1pk "VOL#<project>#<volumeId>"  gsi1sk "<createdAt ISO>#<backupId>"  (a volume's backups by time)
//   key domain   pk "P#<project>"   sk "DOMAIN#<kmsKeyId>"   (wrapped data key; one per project and KMS key)
//                gsi1pk "DOMAINS"  gsi1sk "<project>#<domainId>"  (every domain, for GC: gc-queue.ts)
//   job          pk "P#<project>"   sk "JOB#<jobId>"                            (jobs.ts)
//                while INIT or RUNNING: gsi1pk "JOBS#OPEN"  gsi1sk "<createdAt ISO>#<project>#<jobId>"
//                (removed when the job ends, so unfinished jobs of every project cost one Query)
//   volume       pk "P#<project>"   sk "VOLUME#<volumeId>"                      (volumes.ts, local-mode inventory)
//                while a job holds it: gsi1pk "VOLUMES#LOCKED"  gsi1sk "<project>#<volumeId>"
//   restore part pk "P#<project>"   sk "RESTORE#<volumeId>#<jobId>#<NNNNNN>"  { blocks }  (volumes.ts: the blocks each
//                segment of an EBS restore stored into its one snapshot; the commit hands their sum to CompleteSnapshot)
//   checkpoint   pk "P#<project>"   sk "CHECKPOINT#<checkpointId>"              (checkpoints.ts: a server backup and its item)
//   policy, its members, slot claims, tasks and made backups: POLICY#…, POLRES#…, POLRUN#…, POLTASK#…, POLBK#…
//                (policies.ts, whose header lists them); gsi1pk "POLICIES", "POLRES#…" and, for open tasks, "POLTASKS#OPEN"
//   server       pk "P#<project>"   sk "SERVER#<serverId>"                      (servers.ts, local-mode inventory: its disks;
//                each attached volume names the server in `attachedServerId`, written in the same transaction)
//   segment      pk "P#<project>"   sk "SEGMENT#<backupId>#<NNNNNN>"  { segment, stats }  (a finished segment: commit sums
//                these instead of reading every manifest)
//   share        pk "P#<owner>"   sk "SHARE#<backupId>#<toProject>"  (shares.ts: the owner's view, one per (backup,
//                receiver)); pk "P#<toProject>"  sk "SHARED#<backupId>"  (the receiver's view); pk "SHAREID#<shareId>"
//                sk "SHARE" (lookup by share id); the three written and removed in one transaction
//   token        pk "TOKEN#<sha256 of token>"  sk "TOKEN"  (tokens.ts; the token itself is never stored)
//   GC queue     pk "GCQ"           sk "<deletedAt ISO>#<project>#<backupId>"  (gc-queue.ts)
//   subscription pk "P#<project>"   sk "SUB#<subscriptionId>"                   (subscriptions.ts, notification subscribers)
//                with its endpoint's claim: pk "SUBEP#<protocol>#<sha256 of endpoint>"  sk "SUBEP" (one subscription per endpoint)
// Secondary indexes: CATALOG_INDEXES below (projection ALL). An item is in an index when it has both of the
// index's key attributes, which are strings like `pk` and `sk`.
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
export const jobSortKey = (jobId: string) => `JOB#${jobId}`;
export const OPEN_JOBS_KEY = 'JOBS#OPEN';
export const openJobSortKey = (createdAt: string, projectId: string, jobId: string) => `${createdAt}#${projectId}#${jobId}`;
export const volumeSortKey = (volumeId: string) => `VOLUME#${volumeId}`;
export const serverSortKey = (serverId: string) => `SERVER#${serverId}`;
/** A server backup (CSBS checkpoint; its one checkpoint item shares the record). */
export const checkpointSortKey = (checkpointId: string) => `CHECKPOINT#${checkpointId}`;
/** A finished segment of a backup being made (its statistics); without `segment`, the prefix of all of them. */
export const segmentSortKey = (backupId: string, segment?: number) => `SEGMENT#${backupId}#${segment === undefined ? '' : String(segment).padStart(6, '0')}`;
/** gsi1 partition of the volumes a job holds (set by lock, removed by release). */
export const LOCKED_VOLUMES_KEY = 'VOLUMES#LOCKED';
/** A share as its owner sees it; without `toProjectId`, the prefix of a backup's shares (or, without both, of all). */
export const shareSortKey = (backupId = '', toProjectId?: string) => `SHARE#${backupId}${toProjectId === undefined ? (backupId ? '#' : '') : `#${toProjectId}`}`;
/** A backup another project shared with this one (the receiver's view); empty: the prefix of all of them. */
export const sharedSortKey = (backupId = '') => `SHARED#${backupId}`;
export const shareIdKey = (shareId: string) => `SHAREID#${shareId}`;
export const SHARE_ID_SORT_KEY = 'SHARE';
export const tokenKey = (tokenHash: string) => `TOKEN#${tokenHash}`;
export const TOKEN_SORT_KEY = 'TOKEN';
export const GC_QUEUE_KEY = 'GCQ';
/** gsi1 partition of every key domain (gc-queue.ts lists them; sort key `<project>#<domainId>`). */
export const ALL_DOMAINS_KEY = 'DOMAINS';
export const subscriptionSortKey = (subscriptionId: string) => `SUB#${subscriptionId}`;
export const subscriptionEndpointKey = (protocol: string, endpointHash: string) => `SUBEP#${protocol}#${endpointHash}`;
export const SUBSCRIPTION_ENDPOINT_SORT_KEY = 'SUBEP';

const KEY_ATTRS = [
  CATALOG_KEYS.partitionKey,
  CATALOG_KEYS.sortKey,
  ...Object.values(CATALOG_INDEXES).flatMap((index) => [index.partitionKey, index.sortKey]),
];

/** The stored record of an item: its attributes without the table's key attributes. */
export function fromItem<T>(item: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...item };
  for (const k of KEY_ATTRS) delete out[k];
  return out as T;
}

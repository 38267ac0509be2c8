// The Lambda handlers of docs/service-contract.md and what each one needs: sizing and the least privilege it
// runs with. Plain data, so the local runtime and the tests can read it without building the stack.

// The handler names themselves are in the registry, lib/workflows/registry.ts.
import type { HandlerName } from '../lib/workflows/registry.ts';

/**
 * DynamoDB access: `getItem` is a single GetItem on the table, `read` adds Query/BatchGetItem (and the GSI);
 * `maintain` is readWrite plus Scan (the garbage collector walks the whole chunk table).
 */
export type TableAccess = 'none' | 'getItem' | 'read' | 'readWrite' | 'maintain';

export interface HandlerSpec {
  /** MB. Lambda scales CPU with memory: 1769 MB buys one full vCPU's worth of CPU time, the segment tasks' sweet spot. */
  memoryMb: number;
  timeoutSeconds: number;
  /**
   * The function's reserved concurrency: at most this many run at once, and these are never taken by other
   * functions of the account. Throttled workflow tasks are retried by the state machine; throttled asynchronous
   * events wait in Lambda's queue (up to 6 hours). The stack's total must leave the account's 100 unreserved.
   */
  reservedConcurrency: number;
  /**
   * `sync`: Step Functions or API Gateway waits for the answer and sees the error. `async`: EventBridge hands the
   * event over; after Lambda's own retries it lands in the function's dead-letter queue.
   */
  invocation: 'sync' | 'async';
  catalog: TableAccess;
  chunks: Exclude<TableAccess, 'getItem'>;
  /**
   * S3 access to the pack/manifest bucket: read or write any object; list and delete only the objects under
   * `deletePrefixes` (only the garbage collector deletes: packs and manifests no backup references).
   */
  bucket: { read?: boolean; write?: boolean; deletePrefixes?: readonly string[] };
  /**
   * Direct KMS use by the engine's key domains: `decrypt` unwraps a domain's data key, `generate` also creates
   * one (GenerateDataKey). Covers the service key and customer keys (see functions.ts for the condition).
   */
  dataKeys: 'none' | 'decrypt' | 'generate';
  /** sns:Publish on the notification topic. */
  publish: boolean;
}


// Reserved concurrency. A job's own steps (prepare, commit, fail, delete, notify) run once or twice per job and
// take a second or so: 10 at once serve bursts of hundreds of scheduled jobs. Segment tasks run for minutes,
// `maxConcurrency` (4) per job: 100 lets 25 backups and 25 restores run at full width while bounding what a
// burst can do to the account's pool, the chunk table and the bucket. The api answers in tens of milliseconds:
// 50 at once is well over a thousand requests a second. The stack reserves 451 of an account's default 1,000.
const JOB_STEP = { memoryMb: 512, timeoutSeconds: 60, reservedConcurrency: 10, invocation: 'sync' } as const;
const SEGMENT = { memoryMb: 1769, timeoutSeconds: 15 * 60, reservedConcurrency: 100, invocation: 'sync' } as const;
const NOTHING = { catalog: 'none', chunks: 'none', bucket: {}, dataKeys: 'none', publish: false } as const;

export const HANDLER_SPECS: Record<HandlerName, HandlerSpec> = {
  // The API writes jobs, volumes, tokens and backup state; the stack adds states:StartExecution on the workflows.
  api: { ...JOB_STEP, ...NOTHING, reservedConcurrency: 50, catalog: 'readWrite' },
  // Looks up one token item; nothing else. API Gateway caches its answers per token.
  authorizer: { ...JOB_STEP, ...NOTHING, reservedConcurrency: 20, catalog: 'getItem' },
  // Creates the `creating` backup and, for a new (project, key) pair, the key domain (GenerateDataKey).
  'backup-prepare': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite', dataKeys: 'generate' },
  // Reads the parent manifest, looks up and records chunks, writes packs and its manifest.
  'backup-segment': { ...SEGMENT, ...NOTHING, catalog: 'readWrite', chunks: 'readWrite', bucket: { read: true, write: true }, dataKeys: 'decrypt' },
  // Sums the segments' records in the catalog and marks the backup available; reads no manifest.
  'backup-commit': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Marks the backup failed; the manifests of its finished segments stay until GC (a retry reuses them).
  'backup-fail': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'restore-prepare': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Reads manifests and packs (ranged GETs), looks chunks up; writes only to the target volume.
  'restore-segment': { ...SEGMENT, ...NOTHING, catalog: 'readWrite', chunks: 'read', bucket: { read: true }, dataKeys: 'decrypt' },
  'restore-commit': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'restore-fail': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Removes the backup and queues it for GC in one catalog transaction; the GC (later) touches S3.
  'delete-backup': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'delete-fail': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Takes the group snapshot of the server's disks and creates each disk's `creating` backup (key domains too).
  'server-backup-prepare': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite', dataKeys: 'generate' },
  // Makes the checkpoint and its disk backups available in one transaction; lets go of snapshots.
  'server-backup-commit': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'server-backup-fail': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Stops the server; the disks' restores run through the volume-restore steps.
  'server-restore-prepare': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'server-restore-commit': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'server-restore-fail': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Removes the checkpoint and queues each disk backup for GC.
  'delete-checkpoint': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  'delete-checkpoint-fail': { ...JOB_STEP, ...NOTHING, catalog: 'readWrite' },
  // Reads the job for the message, publishes to the topic.
  notify: { ...JOB_STEP, ...NOTHING, catalog: 'getItem', publish: true },
  // Finds due policies in the catalog and claims each (policy, slot) with a conditional write, then starts the
  // run's backups and its retention's deletes (states:StartExecution on those two, granted in stack.ts). One tick at a time.
  'policy-tick': { ...JOB_STEP, ...NOTHING, reservedConcurrency: 1, invocation: 'async', catalog: 'readWrite' },
  // Garbage collection (docs/format.md): reads every manifest, marks, deletes and moves chunk index entries,
  // writes repacked packs, deletes unreferenced packs and deleted backups' manifests. The only deleter.
  'gc-run': {
    ...SEGMENT,
    ...NOTHING,
    reservedConcurrency: 1,
    invocation: 'async',
    catalog: 'readWrite',
    chunks: 'maintain',
    bucket: { read: true, write: true, deletePrefixes: ['packs/', 'manifests/'] },
    dataKeys: 'decrypt',
    publish: true,
  },
  // The scheduled integrity check: reads backups, manifests, the chunk index and packs, opens chunks (one vCPU,
  // inline), publishes one `check` notification per project. Read-only everywhere. One run at a time.
  'check-run': { ...SEGMENT, ...NOTHING, reservedConcurrency: 1, invocation: 'async', catalog: 'read', chunks: 'read', bucket: { read: true }, dataKeys: 'decrypt', publish: true },
  // An execution that ended FAILED, TIMED_OUT or ABORTED: runs its workflow's fail step and the failure
  // notification in-process, so it holds the rights of all three fail steps and of notify.
  'execution-failed': {
    ...JOB_STEP,
    ...NOTHING,
    // The fail step and the notification one after the other.
    timeoutSeconds: 5 * 60,
    invocation: 'async',
    catalog: 'readWrite',
    publish: true,
  },
};

/** `backup-prepare` -> `BackupPrepare` (used for logical ids). */
export function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/** The CloudFormation logical id of a handler's function: `Fn` + PascalCase name, e.g. `FnBackupPrepare`. */
export function functionLogicalId(name: HandlerName): string {
  return `Fn${pascalCase(name)}`;
}

// The Lambda handlers of docs/service-contract.md and what each one needs: sizing and the least privilege it
// runs with. Plain data, so the local runtime and the tests can read it without building the stack.

// The handler names themselves are in the registry, lib/workflows/registry.ts.
import type { HandlerName } from '../lib/workflows/registry.ts';

/** DynamoDB access: `getItem` is a single GetItem on the table, `read` adds Query/BatchGetItem (and the GSI). */
export type TableAccess = 'none' | 'getItem' | 'read' | 'readWrite';

export interface HandlerSpec {
  /** MB. Lambda scales CPU with memory: 1769 MB buys one full vCPU's worth of CPU time, the segment tasks' sweet spot. */
  memoryMb: number;
  timeoutSeconds: number;
  catalog: TableAccess;
  chunks: Exclude<TableAccess, 'getItem'>;
  /** S3 access to the pack/manifest bucket. */
  bucket: { read?: boolean; write?: boolean; delete?: boolean };
  /**
   * Direct KMS use by the engine's key domains: `decrypt` unwraps a domain's data key, `generate` also creates
   * one (GenerateDataKey). Covers the service key and customer keys (see functions.ts for the condition).
   */
  dataKeys: 'none' | 'decrypt' | 'generate';
  /** sns:Publish on the notification topic. */
  publish: boolean;
}

const SMALL = { memoryMb: 512, timeoutSeconds: 60 } as const;
const SEGMENT = { memoryMb: 1769, timeoutSeconds: 15 * 60 } as const;
const NOTHING = { catalog: 'none', chunks: 'none', bucket: {}, dataKeys: 'none', publish: false } as const;

export const HANDLER_SPECS: Record<HandlerName, HandlerSpec> = {
  // The API writes jobs, volumes, tokens and backup state; the stack adds states:StartExecution on the workflows.
  api: { ...SMALL, ...NOTHING, catalog: 'readWrite' },
  // Looks up one token item; nothing else.
  authorizer: { ...SMALL, ...NOTHING, catalog: 'getItem' },
  // Creates the `creating` backup and, for a new (project, key) pair, the key domain (GenerateDataKey).
  'backup-prepare': { ...SMALL, ...NOTHING, catalog: 'readWrite', dataKeys: 'generate' },
  // Reads the parent manifest, looks up and records chunks, writes packs and its manifest.
  'backup-segment': { ...SEGMENT, ...NOTHING, catalog: 'readWrite', chunks: 'readWrite', bucket: { read: true, write: true }, dataKeys: 'decrypt' },
  // Reads (and decrypts) every segment manifest, marks the backup available.
  'backup-commit': { ...SMALL, ...NOTHING, catalog: 'readWrite', bucket: { read: true }, dataKeys: 'decrypt' },
  // Marks the backup failed and deletes its manifests (lists the prefix, deletes the objects).
  'backup-fail': { ...SMALL, ...NOTHING, catalog: 'readWrite', bucket: { read: true, delete: true } },
  'restore-prepare': { ...SMALL, ...NOTHING, catalog: 'readWrite' },
  // Reads manifests and packs (ranged GETs), looks chunks up; writes only to the target volume.
  'restore-segment': { ...SEGMENT, ...NOTHING, catalog: 'readWrite', chunks: 'read', bucket: { read: true }, dataKeys: 'decrypt' },
  'restore-commit': { ...SMALL, ...NOTHING, catalog: 'readWrite' },
  'restore-fail': { ...SMALL, ...NOTHING, catalog: 'readWrite' },
  // Removes the backup and queues it for GC in one catalog transaction; the GC (later) touches S3.
  'delete-backup': { ...SMALL, ...NOTHING, catalog: 'readWrite' },
  'delete-fail': { ...SMALL, ...NOTHING, catalog: 'readWrite' },
  // Reads the job for the message, publishes to the topic.
  notify: { ...SMALL, ...NOTHING, catalog: 'getItem', publish: true },
  // Finds due policies in the catalog and claims each (policy, slot) with a conditional write. Starting the
  // policy runs (states:StartExecution) is granted when the policy workflows exist.
  'policy-tick': { ...SMALL, ...NOTHING, catalog: 'readWrite' },
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

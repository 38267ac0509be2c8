// Backups on the wire: the VBS v2 request and response schemas (field names exactly as VBS spells them)
// and the views that turn service results into them.
// Request schemas check shape and types; the VBS rules with their own error codes (name, description,
// tags...) are the service's, and the schemas state them from the same constants. Unknown request fields
// are ignored, as VBS clients send more than we use.
import { z } from '@hono/zod-openapi';
import type { BackupRecord } from '../../engine/ports.ts';
import {
  BACKUP_DESCRIPTION_MAX,
  BACKUP_DESCRIPTION_PATTERN,
  BACKUP_NAME_MAX,
  BACKUP_NAME_PATTERN,
  BACKUP_SORT_KEYS,
  TAGS_MAX,
  TAG_KEY_MAX,
  TAG_VALUE_MAX,
} from '../../service/backup-rules.ts';
import { backupTags } from '../../service/backups.ts';
import type { BackupDetail, BackupStarted, QuotaUsage } from '../../service/backups.ts';
import { gigabytes } from '../../service/sizes.ts';
import { Link, Timestamp, documented, idParam, text, vbsTime } from '../schemas.ts';

export const BackupParams = z.object({ project_id: idParam('project_id'), backup_id: idParam('backup_id') });

// ---- requests ----

const Tag = z.object({
  key: documented({ minLength: 1, maxLength: TAG_KEY_MAX }),
  value: documented({ maxLength: TAG_VALUE_MAX }),
});

const backupName = () =>
  documented({
    pattern: BACKUP_NAME_PATTERN,
    minLength: 1,
    maxLength: BACKUP_NAME_MAX,
    description: `1-${BACKUP_NAME_MAX} letters, digits, "_" or "-"; must not start with "auto" (VolumeBackup.0003, 0004, 0005)`,
  });

const backupDescription = () =>
  documented({ pattern: BACKUP_DESCRIPTION_PATTERN, maxLength: BACKUP_DESCRIPTION_MAX, description: `At most ${BACKUP_DESCRIPTION_MAX} characters, no "<" or ">" (VolumeBackup.0006)` });

const volumeRef = (description: string) => text(255, 1).openapi({ description });

export const CreateBackupBody = z
  .object({
    backup: z.object({
      volume_id: volumeRef('Volume to back up (404 OpenVBS.0404 when there is none)'),
      snapshot_id: text(255).nullish().openapi({ description: 'Accepted for compatibility; ignored' }),
      name: backupName(),
      description: backupDescription().nullish(),
      tags: z
        .array(Tag)
        .nullish()
        .openapi({ maxItems: TAGS_MAX, description: `At most ${TAGS_MAX} tags, each key once (OpenVBS.1004)` }),
      extend_param: z
        .object({ FullBackup: z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False'])]).optional() })
        .nullish()
        .openapi({ description: 'FullBackup "true" forces a full backup' }),
    }),
  })
  .openapi('CreateBackupRequest');

/** The native OpenStack create. `container` and `force` are accepted and ignored (in-use volumes are backed up anyway). */
export const NativeCreateBackupBody = z
  .object({
    backup: z.object({
      volume_id: volumeRef('Volume to back up (404 OpenVBS.0404 when there is none)'),
      name: backupName().nullish().openapi({ description: 'As for cloudbackups; absent or null: "backup-" and the first 8 hex digits of the new id' }),
      description: backupDescription().nullish(),
      container: text(255).nullish().openapi({ description: 'Accepted for compatibility; ignored (the service chooses where backups are stored)' }),
      incremental: z.boolean().nullish().openapi({ description: 'false: a full backup; true or absent: incremental when the volume has an earlier backup' }),
      force: z.boolean().nullish().openapi({ description: 'Accepted for compatibility; in-use volumes are backed up without it' }),
    }),
  })
  .openapi('NativeCreateBackupRequest');

export const RestoreBody = z
  .object({ restore: z.object({ volume_id: volumeRef('Target volume (available, at least the backup size; 404 OpenVBS.0404 when there is none)') }) })
  .openapi('RestoreRequest');

export const BACKUP_STATUSES = ['creating', 'available', 'error', 'restoring', 'deleting', 'error_restoring'] as const;

/** Comma-separated `key=value` or `key` items, each with a key (empty items are skipped): what parseTagQuery reads. */
const tagQueryText = z.string().max(4096).regex(/^(?:[^=,][^,]*)?(?:,(?:[^=,][^,]*)?)*$/, 'each tag is key=value or key, with a key');

export const ListBackupsQuery = z.object({
  name: z.string().max(255).optional().openapi({ param: { name: 'name', in: 'query' } }),
  status: z.enum(BACKUP_STATUSES).optional().openapi({ param: { name: 'status', in: 'query' } }),
  volume_id: idParam('volume_id', 'query').optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().openapi({ param: { name: 'offset', in: 'query' } }),
  limit: z.coerce.number().int().min(1).max(1_000_000_000).optional().openapi({ param: { name: 'limit', in: 'query' }, description: 'At most 1000 per page' }),
  marker: idParam('marker', 'query').optional().openapi({ description: 'Id of the last backup of the previous page' }),
  sort_key: z.enum(BACKUP_SORT_KEYS).optional().openapi({ param: { name: 'sort_key', in: 'query' } }),
  sort_dir: z.enum(['asc', 'desc']).optional().openapi({ param: { name: 'sort_dir', in: 'query' } }),
  tags: z
    .union([tagQueryText, z.array(tagQueryText).max(TAGS_MAX)])
    .optional()
    .openapi({
      param: { name: 'tags', in: 'query' },
      description: 'Only backups with all these tags: `key=value` (that value) or `key` (any value), comma-separated or the parameter repeated, e.g. `tags=env=prod,team`',
    }),
});
export type ListBackupsQuery = z.infer<typeof ListBackupsQuery>;

/** The `tags` query as (key, optional value) pairs; a pair with an empty key is a bad parameter (undefined here). */
export function parseTagQuery(raw: string | string[] | undefined): Array<{ key: string; value?: string }> | undefined {
  if (raw === undefined) return [];
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((s) => s.split(',')).filter((p) => p !== '');
  const out: Array<{ key: string; value?: string }> = [];
  for (const part of parts) {
    const at = part.indexOf('=');
    const key = at < 0 ? part : part.slice(0, at);
    if (!key) return undefined;
    out.push(at < 0 ? { key } : { key, value: part.slice(at + 1) });
  }
  return out;
}

// ---- responses ----

export const JobIdResponse = z.object({ job_id: z.string() }).openapi('JobId');

export const BackupSummary = z.object({ id: z.string(), name: z.string(), links: z.array(Link) }).openapi('BackupSummary');

export const NativeBackupCreatedResponse = z.object({ backup: BackupSummary });

/**
 * The OpenVBS extension attribute on a backup, named in the manner of VBS's `os-bak-tenant-attr:tenant_id`
 * (`os-<extension>:<attribute>`): VBS clients ignore keys they do not know.
 */
export const BACKUP_STATS_ATTR = 'os-openvbs-bak-stats-attr:stats';
/** OpenVBS extension: true when another project (`os-bak-tenant-attr:tenant_id`) owns the backup and shares it with this one. */
export const BACKUP_SHARED_ATTR = 'os-openvbs-bak-share-attr:shared_to_me';

const count = (description: string) => z.number().int().nullable().openapi({ description });

export const BackupStats = z
  .object({
    stored_bytes: count('Bytes this backup added to storage (sealed chunk payloads written into packs)'),
    new_chunks: count('Chunks this backup wrote'),
    reused_blocks: count('Blocks equal to those of the parent backup at the same offset (neither looked up nor stored)'),
    dedup_blocks: count('Blocks found already stored (by another backup, or earlier in this one)'),
    zero_blocks: count('All-zero blocks (not stored)'),
    blocks: count('Blocks of the volume, zero blocks included'),
    logical_bytes: count('Bytes of non-zero data the backup covers'),
    packs_written: count('Pack objects this backup wrote'),
    parent_backup_id: z.string().nullable().openapi({ description: 'The backup this incremental one is compared against; null for a full backup' }),
  })
  .openapi('BackupStats', { description: 'OpenVBS extension: what the backup cost. The figures are null until the backup is committed (while `creating`, or after an `error`).' });

export const Backup = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(BACKUP_STATUSES),
    description: z.string().nullable(),
    availability_zone: z.string(),
    volume_id: z.string(),
    fail_reason: z.string().nullable(),
    size: z.number().int().openapi({ description: 'GB (2^30 bytes), rounded up' }),
    object_count: z.number().int(),
    container: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
    data_timestamp: Timestamp,
    'os-bak-tenant-attr:tenant_id': z.string(),
    service_metadata: z.string().openapi({
      description:
        'JSON string of string values: Type ("0" full, "1" incremental), progress, CMKID, ST, bootable, DL; ' +
        `and the cost as in ${BACKUP_STATS_ATTR}: stored_bytes, new_chunks, reused_blocks, dedup_blocks, zero_blocks ("" until committed), parent_backup_id ("" for a full backup)`,
    }),
    has_dependent_backups: z.boolean(),
    snapshot_id: z.string().nullable(),
    is_incremental: z.boolean(),
    links: z.array(Link),
    tags: z.array(z.object({ key: z.string(), value: z.string() })).openapi({ description: 'The tags given at create (a policy backup: the policy’s)' }),
    [BACKUP_STATS_ATTR]: BackupStats,
    [BACKUP_SHARED_ATTR]: z.boolean().openapi({
      description: 'OpenVBS extension: the backup is another project’s (its tenant_id) shared with this one; this project can create volumes from it, nothing else',
    }),
  })
  .openapi('Backup');

export const BackupListResponse = z.object({ backups: z.array(BackupSummary), backups_links: z.array(Link).optional() });
export const BackupDetailListResponse = z.object({ backups: z.array(Backup), backups_links: z.array(Link).optional() });
export const BackupResponse = z.object({ backup: Backup });
export const NativeRestoreResponse = z.object({ restore: z.object({ backup_id: z.string(), volume_id: z.string(), volume_name: z.string() }) });
export const QuotaResponse = z.object({
  quotas: z.object({
    resources: z.array(z.object({ type: z.enum(['backups', 'backup_gigabytes']), used: z.number().int(), reserved: z.number().int(), quota: z.number().int() })),
  }),
});

// ---- views ----

function backupLinks(baseUrl: string, projectId: string, backupId: string) {
  return [
    { href: `${baseUrl}/v2/${projectId}/backups/${backupId}`, rel: 'self' },
    { href: `${baseUrl}/${projectId}/backups/${backupId}`, rel: 'bookmark' },
  ];
}

/** Links under the project looking at the backup: its owner's, or the project it is shared with. */
const viewerOf = (detail: BackupDetail) => detail.sharedTo ?? detail.record.projectId;

export function backupSummaryView(detail: BackupDetail, baseUrl: string): z.infer<typeof BackupSummary> {
  const r = detail.record;
  return { id: r.backupId, name: r.name, links: backupLinks(baseUrl, viewerOf(detail), r.backupId) };
}

/** A backup just started (its catalog item appears once the workflow has prepared it). */
export function backupStartedView(projectId: string, started: BackupStarted, baseUrl: string): z.infer<typeof NativeBackupCreatedResponse> {
  return { backup: { id: started.backupId, name: started.name, links: backupLinks(baseUrl, projectId, started.backupId) } };
}

/** What the backup cost; the figures are known once it is committed (the engine records them then). */
function backupStatsView(r: BackupRecord): z.infer<typeof BackupStats> {
  const s = r.stats;
  return {
    stored_bytes: s?.storedBytes ?? null,
    new_chunks: s?.newChunks ?? null,
    reused_blocks: s?.reusedFromParent ?? null,
    dedup_blocks: s?.dedupHits ?? null,
    zero_blocks: s?.zeroBlocks ?? null,
    blocks: s?.blocks ?? null,
    logical_bytes: s?.logicalBytes ?? null,
    packs_written: s?.packsWritten ?? null,
    parent_backup_id: r.parentId ?? null,
  };
}

/**
 * `service_metadata`, a JSON string as VBS shows it (DL 3 = deduplicated and compressed), plus the cost.
 * Every value is a string, as VBS writes them ("" where VBS would leave a value out, as CMKID does).
 */
function serviceMetadata(detail: BackupDetail, stats: z.infer<typeof BackupStats>): string {
  const r = detail.record;
  const text = (v: number | string | null) => (v === null ? '' : String(v));
  return JSON.stringify({
    Type: r.parentId ? '1' : '0',
    progress: String(detail.progress),
    CMKID: r.customerKey ? r.kmsKeyId : '',
    ST: String(r.extra?.ST ?? 0),
    bootable: String(r.extra?.bootable === true),
    DL: '3',
    stored_bytes: text(stats.stored_bytes),
    new_chunks: text(stats.new_chunks),
    reused_blocks: text(stats.reused_blocks),
    dedup_blocks: text(stats.dedup_blocks),
    zero_blocks: text(stats.zero_blocks),
    parent_backup_id: text(stats.parent_backup_id),
  });
}

export function backupView(detail: BackupDetail, baseUrl: string, availabilityZone: string): z.infer<typeof Backup> {
  const r = detail.record;
  const snapshotId = r.extra?.snapshotId;
  const stats = backupStatsView(r);
  return {
    id: r.backupId,
    name: r.name,
    status: r.status,
    description: r.description ?? null,
    availability_zone: availabilityZone,
    volume_id: r.volumeId,
    fail_reason: r.failReason ?? null,
    size: gigabytes(r.sizeBytes),
    object_count: r.stats?.chunkCount ?? 0,
    container: null,
    created_at: vbsTime(r.createdAt),
    updated_at: vbsTime(r.updatedAt),
    data_timestamp: vbsTime(r.createdAt),
    'os-bak-tenant-attr:tenant_id': r.projectId,
    service_metadata: serviceMetadata(detail, stats),
    has_dependent_backups: false,
    snapshot_id: typeof snapshotId === 'string' ? snapshotId : null,
    is_incremental: Boolean(r.parentId),
    links: backupLinks(baseUrl, viewerOf(detail), r.backupId),
    tags: backupTags(r).map((t) => ({ key: t.key, value: t.value })),
    [BACKUP_STATS_ATTR]: stats,
    [BACKUP_SHARED_ATTR]: detail.sharedTo !== undefined,
  };
}

export function quotaView(usage: QuotaUsage[]): z.infer<typeof QuotaResponse> {
  return { quotas: { resources: usage.map((u) => ({ type: u.type, used: u.used, reserved: u.reserved, quota: u.quota })) } };
}

// Request and response schemas of the REST API. The same zod schemas validate requests (through
// @hono/zod-openapi) and describe the API in the OpenAPI document (GET /openapi.json).
// Request schemas check shape and types only; the VBS rules with their own error codes (name, description,
// tags...) are the service's. Unknown request fields are ignored, as VBS clients send more than we use.
import { z } from '@hono/zod-openapi';
import { BACKUP_SORT_KEYS, GIB, ID_PATTERN } from '../service/vbs-service.ts';

const MAX_VOLUME_GB = 65_536;

const id = (name: string, where: 'path' | 'query' = 'path') =>
  z
    .string()
    .regex(ID_PATTERN, `${name} must be 1-128 letters, digits, "_" or "-"`)
    .openapi({ param: { name, in: where }, example: name === 'project_id' ? '0123456789abcdef0123456789abcdef' : '6f1c3c52-7a4b-4e43-9d3e-8d4c2a0f1b11' });

export const ProjectParams = z.object({ project_id: id('project_id') });
export const BackupParams = z.object({ project_id: id('project_id'), backup_id: id('backup_id') });
export const JobParams = z.object({ project_id: id('project_id'), job_id: id('job_id') });
export const VolumeParams = z.object({ project_id: id('project_id'), volume_id: id('volume_id') });

// ---- requests ----

const Tag = z.object({ key: z.string().max(255), value: z.string().max(255) });

export const CreateBackupBody = z
  .object({
    backup: z.object({
      volume_id: z.string().min(1).max(255).openapi({ description: 'Volume to back up' }),
      snapshot_id: z.string().max(255).nullish().openapi({ description: 'Accepted for compatibility; ignored' }),
      name: z.string().max(1024).openapi({ description: '1-64 letters, digits, "_" or "-"; must not start with "auto"' }),
      description: z.string().max(4096).nullish(),
      tags: z.array(Tag).max(100).nullish(),
      extend_param: z
        .object({ FullBackup: z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False'])]).optional() })
        .nullish()
        .openapi({ description: 'FullBackup "true" forces a full backup' }),
    }),
  })
  .openapi('CreateBackupRequest');

export const RestoreBody = z
  .object({ restore: z.object({ volume_id: z.string().min(1).max(255).openapi({ description: 'Target volume (available, at least the backup size)' }) }) })
  .openapi('RestoreRequest');

export const CreateVolumeBody = z
  .object({
    volume: z
      .object({
        name: z.string().min(1).max(255),
        size: z.number().int().min(1).max(MAX_VOLUME_GB).optional().openapi({ description: 'Size in GB (2^30 bytes) of a new sparse image' }),
        size_bytes: z
          .number()
          .int()
          .min(1)
          .max(MAX_VOLUME_GB * GIB)
          .optional()
          .openapi({ description: 'Size in bytes of a new sparse image (or of a registered block device)' }),
        path: z.string().min(1).max(4096).optional().openapi({ description: 'Register this existing image file or block device instead' }),
        kms_key_id: z.string().min(1).max(2048).optional().openapi({ description: 'Customer KMS key: backups are encrypted under it' }),
      })
      .superRefine((v, ctx) => {
        if (v.size !== undefined && v.size_bytes !== undefined) ctx.addIssue({ code: 'custom', message: 'give size or size_bytes, not both' });
        if (v.path !== undefined && v.size !== undefined) ctx.addIssue({ code: 'custom', message: 'give path or size, not both' });
        if (v.path === undefined && v.size === undefined && v.size_bytes === undefined) ctx.addIssue({ code: 'custom', message: 'give size, size_bytes or path' });
      }),
  })
  .openapi('CreateVolumeRequest');

export const CreateTokenBody = z
  .object({ token: z.object({ description: z.string().max(255).optional() }).optional() })
  .openapi('CreateTokenRequest');

export const BACKUP_STATUSES = ['creating', 'available', 'error', 'restoring', 'deleting', 'error_restoring'] as const;

export const ListBackupsQuery = z.object({
  name: z.string().max(255).optional().openapi({ param: { name: 'name', in: 'query' } }),
  status: z.enum(BACKUP_STATUSES).optional().openapi({ param: { name: 'status', in: 'query' } }),
  volume_id: id('volume_id', 'query').optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().openapi({ param: { name: 'offset', in: 'query' } }),
  limit: z.coerce.number().int().min(1).max(1_000_000_000).optional().openapi({ param: { name: 'limit', in: 'query' }, description: 'At most 1000 per page' }),
  marker: id('marker', 'query').optional().openapi({ description: 'Id of the last backup of the previous page' }),
  sort_key: z.enum(BACKUP_SORT_KEYS).optional().openapi({ param: { name: 'sort_key', in: 'query' } }),
  sort_dir: z.enum(['asc', 'desc']).optional().openapi({ param: { name: 'sort_dir', in: 'query' } }),
});

// ---- responses ----

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
export const ItemNotFoundResponse = z.object({ itemNotFound: z.object({ message: z.string(), code: z.literal(404) }) }).openapi('ItemNotFound');

const Link = z.object({ href: z.string(), rel: z.string() });

export const JobIdResponse = z.object({ job_id: z.string() }).openapi('JobId');

export const Job = z
  .object({
    job_id: z.string(),
    job_type: z.string(),
    status: z.enum(['INIT', 'RUNNING', 'SUCCESS', 'FAIL']),
    begin_time: z.string().nullable(),
    end_time: z.string().nullable(),
    error_code: z.string().nullable(),
    fail_reason: z.string().nullable(),
    entities: z.record(z.string(), z.string()),
    sub_jobs: z.array(z.unknown()),
    progress: z.number().int(),
    bytes_done: z.number().int(),
    bytes_total: z.number().int(),
  })
  .openapi('Job');

export const BackupSummary = z.object({ id: z.string(), name: z.string(), links: z.array(Link) }).openapi('BackupSummary');

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
    created_at: z.string(),
    updated_at: z.string(),
    data_timestamp: z.string(),
    'os-bak-tenant-attr:tenant_id': z.string(),
    service_metadata: z.string().openapi({ description: 'JSON string: Type ("0" full, "1" incremental), progress, CMKID, ST, bootable, DL' }),
    has_dependent_backups: z.boolean(),
    snapshot_id: z.string().nullable(),
    is_incremental: z.boolean(),
    links: z.array(Link),
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

export const Volume = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(['available', 'in-use', 'backing-up', 'restoring', 'error']),
    size: z.number().int().openapi({ description: 'GB (2^30 bytes), rounded up' }),
    size_bytes: z.number().int(),
    path: z.string(),
    encrypted: z.boolean(),
    kms_key_id: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Volume');

export const VolumeResponse = z.object({ volume: Volume });
export const VolumeListResponse = z.object({ volumes: z.array(Volume) });

export const TokenResponse = z.object({
  token: z.object({ id: z.string(), token: z.string().openapi({ description: 'The secret; shown only here' }), project_id: z.string(), created_at: z.string() }),
});

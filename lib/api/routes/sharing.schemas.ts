// Backup shares on the wire (VBS `os-vendor-backup-sharing`), field names as VBS spells them. A share's times
// are written as VBS writes them (UTC, microseconds, no zone); `deleted` and `deleted_at` are null, as a
// removed share is gone rather than kept marked deleted.
import { ID_PATTERN } from '../../service/ids.ts';
import { z } from '@hono/zod-openapi';
import type { ShareRecord } from '../../catalog/shares.ts';
import { MAX_SHARE_PROJECTS, SHARE_SORT_KEYS } from '../../service/sharing.ts';
import type { ShareDetail } from '../../service/sharing.ts';
import { Link, Timestamp, idParam, text, vbsTime } from '../schemas.ts';
import { BACKUP_STATUSES, Backup, backupView } from './backups.schemas.ts';

export const ShareParams = z.object({ project_id: idParam('project_id'), share_id: idParam('share_id') });

export const CreateShareBody = z
  .object({
    shared: z.object({
      backup_id: text(255, 1).openapi({ description: 'An available backup of this project (404 OpenVBS.0404 when there is none)' }),
      to_project_ids: z
        .array(text(255, 1).openapi({ pattern: ID_PATTERN.source }))
        .openapi({ minItems: 1, maxItems: MAX_SHARE_PROJECTS, description: `1-${MAX_SHARE_PROJECTS} other projects (OpenVBS.1901)` }),
    }),
  })
  .openapi('CreateShareRequest');

const bool = z.enum(['true', 'false', 'True', 'False', '1', '0']).transform((v) => v === 'true' || v === 'True' || v === '1');
const q = (name: string) => ({ param: { name, in: 'query' as const } });

export const ShareFilterQuery = z.object({
  share_to_me: bool.optional().openapi({ ...q('share_to_me'), description: 'true: the backups other projects shared with this one; otherwise the ones this project shared' }),
  backup_id: z.string().max(255).optional().openapi(q('backup_id')),
  from_project_id: z.string().max(255).optional().openapi(q('from_project_id')),
  to_project_id: z.string().max(255).optional().openapi(q('to_project_id')),
  volume_id: z.string().max(255).optional().openapi(q('volume_id')),
  name: z.string().max(255).optional().openapi({ ...q('name'), description: 'Part of the backup’s name (case-insensitive)' }),
  status: z.enum(BACKUP_STATUSES).optional().openapi({ ...q('status'), description: 'The backup’s status' }),
  availability_zone: z.string().max(255).optional().openapi(q('availability_zone')),
  // The reference's parameter table spells it so; accepted as well.
  avalilability_zone: z.string().max(255).optional().openapi(q('avalilability_zone')),
});
export type ShareFilterQuery = z.infer<typeof ShareFilterQuery>;

export const ShareListQuery = ShareFilterQuery.extend({
  sort_key: z.enum(SHARE_SORT_KEYS).optional().openapi({ ...q('sort_key'), description: 'Default created_at (of the share); name, status and size are the backup’s' }),
  sort_dir: z.enum(['asc', 'desc']).optional().openapi(q('sort_dir')),
  limit: z.coerce.number().int().min(1).max(1_000_000_000).optional().openapi({ ...q('limit'), description: 'At most 1000 per page' }),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().openapi(q('offset')),
  marker: idParam('marker', 'query').optional().openapi({ description: 'Id of the last share of the previous page' }),
});
export type ShareListQuery = z.infer<typeof ShareListQuery>;

export const DeleteShareQuery = z.object({
  is_backup_id: bool.optional().openapi({ ...q('is_backup_id'), description: 'true: the id in the path is a backup’s, and all its shares are removed' }),
});

// ---- responses ----

const shareFields = {
  id: z.string(),
  backup_id: z.string(),
  from_project_id: z.string(),
  to_project_id: z.string(),
  created_at: Timestamp,
  updated_at: Timestamp,
  deleted: z.null().openapi({ description: 'Always null: a removed share is gone' }),
  deleted_at: z.null(),
};

export const Share = z.object(shareFields).openapi('Share');
export const ShareWithBackup = z.object({ ...shareFields, backup: Backup }).openapi('ShareWithBackup');

export const CreateShareResponse = z.object({ shared: z.array(Share) });
export const ShareListResponse = z.object({ shared: z.array(ShareWithBackup), shared_links: z.array(Link).optional() });
export const ShareResponse = z.object({ shared: ShareWithBackup });
export const ShareCountResponse = z.object({ count: z.number().int() });

export function shareView(s: ShareRecord): z.infer<typeof Share> {
  return {
    id: s.shareId,
    backup_id: s.backupId,
    from_project_id: s.fromProjectId,
    to_project_id: s.toProjectId,
    created_at: vbsTime(s.createdAt),
    updated_at: vbsTime(s.updatedAt),
    deleted: null,
    deleted_at: null,
  };
}

export function shareDetailView(d: ShareDetail, baseUrl: string, availabilityZone: string): z.infer<typeof ShareWithBackup> {
  return { ...shareView(d.share), backup: backupView(d.backup, baseUrl, availabilityZone) };
}

// Volumes on the wire (an OpenVBS extension: the local volume inventory).
import { z } from '@hono/zod-openapi';
import type { VolumeRecord } from '../../catalog/volumes.ts';
import { GIB, MAX_VOLUME_GB, gigabytes } from '../../service/sizes.ts';
import { Timestamp, idParam, text, vbsTime } from '../schemas.ts';

export const VolumeParams = z.object({ project_id: idParam('project_id'), volume_id: idParam('volume_id') });

const volumeName = text(255, 1);
const kmsKeyId = text(2048, 1).optional().openapi({ description: 'A customer key of the project (id, ARN or alias): backups are encrypted under it' });
const sizeGb = z.number().int().min(1).max(MAX_VOLUME_GB).openapi({ description: 'Size in GB (2^30 bytes) of a new sparse image' });
const sizeBytes = z.number().int().min(1).max(MAX_VOLUME_GB * GIB).openapi({ description: 'Size in bytes of a new sparse image' });
const backupId = text(255, 1).openapi({
  description: 'Restore this backup (the project’s own, or one shared with it) into the new volume, as a job; the size is at least the backup’s (VolumeBackup.0209), by default the same',
});
const path = text(4096, 1)
  .regex(/^\//, 'must be an absolute path')
  .openapi({ description: 'Register this existing image file or block device (an administrator’s act, only under the folders the operator lists)' });

// Exactly one of size, size_bytes or path; size_bytes may come with path (a block device whose size the
// service cannot read); backup_id with size, size_bytes or neither (then the backup's size). Each form is
// closed, so no request fits two of them and nothing else is taken.
export const CreateVolumeBody = z
  .object({
    volume: z
      .union(
        [
          z.strictObject({ name: volumeName, size: sizeGb, kms_key_id: kmsKeyId, backup_id: backupId.optional() }),
          z.strictObject({ name: volumeName, size_bytes: sizeBytes, kms_key_id: kmsKeyId, backup_id: backupId.optional() }),
          z.strictObject({ name: volumeName, backup_id: backupId, kms_key_id: kmsKeyId }),
          z.strictObject({ name: volumeName, path, size_bytes: sizeBytes.optional().openapi({ description: 'The size of a block device the service cannot read' }), kms_key_id: kmsKeyId }),
        ],
        { error: 'give name and exactly one of size, size_bytes or path (size_bytes may come with path; backup_id with size, size_bytes or alone), and no other fields' },
      )
      .openapi({ description: 'A new sparse image (size or size_bytes; restored from backup_id when given), or an existing image or block device (path)' }, { unionPreferredType: 'oneOf' }),
  })
  .openapi('CreateVolumeRequest');

export const Volume = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(['available', 'in-use', 'backing-up', 'restoring', 'error']),
    status_reason: z.string().nullable().openapi({ description: 'why the volume is error (e.g. a restore that did not finish)' }),
    size: z.number().int().openapi({ description: 'GB (2^30 bytes), rounded up' }),
    size_bytes: z.number().int(),
    path: z.string(),
    encrypted: z.boolean(),
    kms_key_id: z.string().nullable().openapi({ description: 'ARN of the customer key' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('Volume');

export const VolumeResponse = z.object({ volume: Volume });
export const VolumeCreatedResponse = z.object({
  volume: Volume,
  job_id: z.string().optional().openapi({ description: 'A volume from a backup: the restore job (GET /v1/{project_id}/jobs/{job_id}); the volume is `restoring` until it ends' }),
});
export const VolumeListResponse = z.object({ volumes: z.array(Volume) });

export function volumeView(v: VolumeRecord): z.infer<typeof Volume> {
  return {
    id: v.volumeId,
    name: v.name,
    status: v.status,
    status_reason: v.statusReason ?? null,
    size: gigabytes(v.sizeBytes),
    size_bytes: v.sizeBytes,
    path: v.path,
    encrypted: Boolean(v.kmsKeyId),
    kms_key_id: v.kmsKeyId ?? null,
    created_at: vbsTime(v.createdAt),
    updated_at: vbsTime(v.updatedAt),
  };
}

// Volumes on the wire (an OpenVBS extension: the local volume inventory).
import { z } from '@hono/zod-openapi';
import type { VolumeRecord } from '../../catalog/volumes.ts';
import { GIB, gigabytes } from '../../service/sizes.ts';
import { idParam } from '../schemas.ts';

const MAX_VOLUME_GB = 65_536;

export const VolumeParams = z.object({ project_id: idParam('project_id'), volume_id: idParam('volume_id') });

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
        kms_key_id: z.string().min(1).max(2048).optional().openapi({ description: 'A customer key of the project (id, ARN or alias): backups are encrypted under it' }),
      })
      .superRefine((v, ctx) => {
        if (v.size !== undefined && v.size_bytes !== undefined) ctx.addIssue({ code: 'custom', message: 'give size or size_bytes, not both' });
        if (v.path !== undefined && v.size !== undefined) ctx.addIssue({ code: 'custom', message: 'give path or size, not both' });
        if (v.path === undefined && v.size === undefined && v.size_bytes === undefined) ctx.addIssue({ code: 'custom', message: 'give size, size_bytes or path' });
      }),
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
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Volume');

export const VolumeResponse = z.object({ volume: Volume });
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
    created_at: v.createdAt,
    updated_at: v.updatedAt,
  };
}

// Volumes on the wire (an OpenVBS extension: the local volume inventory).
import { z } from '@hono/zod-openapi';
import type { VolumeRecord } from '../../catalog/volumes.ts';
import { GIB, MAX_VOLUME_GB, gigabytes } from '../../service/sizes.ts';
import { Timestamp, idParam, text, vbsTime } from '../schemas.ts';

export const VolumeParams = z.object({ project_id: idParam('project_id'), volume_id: idParam('volume_id') });

const VOLUME_SOURCES = ['size', 'size_bytes', 'path'] as const;

/** Exactly one of size, size_bytes or path; size_bytes may come with path (a block device whose size the service cannot read). */
const oneSource = (v: { size?: number; size_bytes?: number; path?: string }) =>
  v.path !== undefined ? v.size === undefined : (v.size !== undefined) !== (v.size_bytes !== undefined);

export const CreateVolumeBody = z
  .object({
    volume: z
      .object({
        name: text(255, 1),
        size: z.number().int().min(1).max(MAX_VOLUME_GB).optional().openapi({ description: 'Size in GB (2^30 bytes) of a new sparse image' }),
        size_bytes: z
          .number()
          .int()
          .min(1)
          .max(MAX_VOLUME_GB * GIB)
          .optional()
          .openapi({ description: 'Size in bytes of a new sparse image (or, with path, of a block device whose size the service cannot read)' }),
        path: text(4096, 1)
          .regex(/^\//, 'must be an absolute path')
          .optional()
          .openapi({ description: 'Register this existing image file or block device instead (an administrator’s act, only under the folders the operator lists)' }),
        kms_key_id: text(2048, 1).optional().openapi({ description: 'A customer key of the project (id, ARN or alias): backups are encrypted under it' }),
      })
      .superRefine((v, ctx) => {
        if (oneSource(v)) return;
        const given = VOLUME_SOURCES.filter((k) => v[k] !== undefined);
        ctx.addIssue({ code: 'custom', message: `give exactly one of size, size_bytes or path (size_bytes may come with path)${given.length ? `, not ${given.join(' and ')}` : ''}` });
      })
      // the same rule: each branch excludes the others' fields, so exactly one matches
      .openapi({
        oneOf: [
          { required: ['size'], not: { anyOf: [{ required: ['size_bytes'] }, { required: ['path'] }] } },
          { required: ['size_bytes'], not: { anyOf: [{ required: ['size'] }, { required: ['path'] }] } },
          { required: ['path'], not: { required: ['size'] } },
        ],
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
    created_at: Timestamp,
    updated_at: Timestamp,
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
    created_at: vbsTime(v.createdAt),
    updated_at: vbsTime(v.updatedAt),
  };
}

// Customer keys on the wire (OpenVBS extension).
import { z } from '@hono/zod-openapi';
import type { KeyInfo } from '../../engine/ports.ts';

export const CreateKeyBody = z
  .object({
    key: z
      .object({
        alias: z.string().max(512).optional().openapi({ description: '"alias/" + 1-250 letters, digits, "/", "_" or "-"; not alias/aws/… or alias/openvbs…', example: 'alias/finance-disks' }),
        description: z.string().max(1024).optional().openapi({ description: 'At most 255 characters' }),
      })
      .optional(),
  })
  .openapi('CreateKeyRequest');

export const Key = z
  .object({
    id: z.string(),
    arn: z.string().openapi({ description: 'What a volume names as kms_key_id (the id and the alias work too)' }),
    alias: z.string().nullable(),
    description: z.string().nullable(),
    enabled: z.boolean(),
    created_at: z.string(),
  })
  .openapi('Key');

export const KeyResponse = z.object({ key: Key });
export const KeyListResponse = z.object({ keys: z.array(Key) });

export function keyView(key: KeyInfo): z.infer<typeof Key> {
  return {
    id: key.keyId,
    arn: key.arn,
    alias: key.alias ?? null,
    description: key.description ?? null,
    enabled: key.enabled,
    created_at: key.createdAt,
  };
}

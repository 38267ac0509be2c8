// Customer keys on the wire (OpenVBS extension).
import { z } from '@hono/zod-openapi';
import type { KeyInfo } from '../../engine/ports.ts';
import { KEY_ALIAS_PATTERN, KEY_DESCRIPTION_MAX } from '../../service/keys.ts';
import { Timestamp, documented, vbsTime } from '../schemas.ts';

export const CreateKeyBody = z
  .object({
    key: z
      .object({
        alias: documented({ pattern: KEY_ALIAS_PATTERN, maxLength: 256, description: '"alias/" + 1-250 letters, digits, "/", "_" or "-"; not alias/aws/… or alias/openvbs… (OpenVBS.1201)' })
          .optional()
          .openapi({ example: 'alias/finance-disks' }),
        description: documented({ maxLength: KEY_DESCRIPTION_MAX, description: `At most ${KEY_DESCRIPTION_MAX} characters (OpenVBS.1201)` }).optional(),
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
    created_at: Timestamp,
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
    created_at: vbsTime(key.createdAt),
  };
}

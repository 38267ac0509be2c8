// The DynamoDB chunk index reads strongly consistently (the emulator cannot show the difference, so the
// request itself is checked here, at the SDK seam).
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoChunkIndex } from '../../lib/aws/dynamo-chunk-index.ts';

describe('DynamoChunkIndex lookups', () => {
  it('ask for strongly consistent reads, so a restore finds every chunk its backup recorded', async () => {
    const sent: unknown[] = [];
    const ddb = {
      send: async (command: unknown) => {
        sent.push(command);
        return { Responses: { chunks: [{ pk: 'd1#aa', pack: 'packs/d1/p', off: 0, len: 10 }] } };
      },
    } as unknown as DynamoDBDocumentClient;
    const found = await new DynamoChunkIndex(ddb, 'chunks').lookup('d1', ['aa', 'bb']);
    expect(found.get('aa')).toEqual({ pack: 'packs/d1/p', offset: 0, length: 10 });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(BatchGetCommand);
    expect((sent[0] as BatchGetCommand).input.RequestItems!.chunks).toMatchObject({ ConsistentRead: true, Keys: [{ pk: 'd1#aa' }, { pk: 'd1#bb' }] });
  });
});

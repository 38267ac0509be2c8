// KeyService on KMS: data keys are generated and unwrapped under an encryption context.
import { DecryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { KeyService } from '../engine/ports.ts';

export class KmsKeyService implements KeyService {
  private readonly kms: KMSClient;

  constructor(kms: KMSClient) {
    this.kms = kms;
  }

  async generateDataKey(kmsKeyId: string, context: Record<string, string>) {
    const res = await this.kms.send(new GenerateDataKeyCommand({ KeyId: kmsKeyId, KeySpec: 'AES_256', EncryptionContext: context }));
    return { plaintext: Buffer.from(res.Plaintext!), wrapped: Buffer.from(res.CiphertextBlob!) };
  }

  async unwrap(kmsKeyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    // Naming the key makes KMS refuse a blob wrapped by any other key.
    const res = await this.kms.send(new DecryptCommand({ KeyId: kmsKeyId, CiphertextBlob: wrapped, EncryptionContext: context }));
    return Buffer.from(res.Plaintext!);
  }
}

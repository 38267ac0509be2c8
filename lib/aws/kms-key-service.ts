// KeyService on KMS: data keys are generated and unwrapped under an encryption context; customer keys are
// KMS keys tagged with the project that created them.
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyCommand,
  KMSServiceException,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  NotFoundException,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import type { KMSClient, KeyMetadata } from '@aws-sdk/client-kms';
import { KeyAccessError } from '../engine/ports.ts';
import type { KeyInfo, KeyService } from '../engine/ports.ts';
import { mapLimit } from '../util/concurrency.ts';

/** The tag naming the project that created a key through the API. */
export const OWNER_TAG = 'openvbs:project';

// The errors by which KMS refuses a key or a blob. moto answers a blob of another key with
// AccessDeniedException where KMS says IncorrectKeyException.
const REFUSALS = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'NotFoundException',
  'DisabledException',
  'KMSInvalidStateException',
  'AccessDeniedException',
]);

function refusal(err: unknown, what: string): unknown {
  if (!(err instanceof KMSServiceException) || !REFUSALS.has(err.name)) return err;
  return new KeyAccessError(`KMS refused to ${what}: ${err.name}: ${err.message}`, { cause: err });
}

export class KmsKeyService implements KeyService {
  private readonly kms: KMSClient;

  constructor(kms: KMSClient) {
    this.kms = kms;
  }

  async generateDataKey(kmsKeyId: string, context: Record<string, string>) {
    try {
      const res = await this.kms.send(new GenerateDataKeyCommand({ KeyId: kmsKeyId, KeySpec: 'AES_256', EncryptionContext: context }));
      return { plaintext: Buffer.from(res.Plaintext!), wrapped: Buffer.from(res.CiphertextBlob!) };
    } catch (err) {
      throw refusal(err, `generate a data key under ${kmsKeyId}`);
    }
  }

  async unwrap(kmsKeyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    try {
      // Naming the key makes KMS refuse a blob wrapped by any other key.
      const res = await this.kms.send(new DecryptCommand({ KeyId: kmsKeyId, CiphertextBlob: wrapped, EncryptionContext: context }));
      return Buffer.from(res.Plaintext!);
    } catch (err) {
      throw refusal(err, `unwrap a data key with ${kmsKeyId}`);
    }
  }

  async createKey(options: { owner?: string; alias?: string; description?: string }): Promise<KeyInfo> {
    const alias = options.alias === undefined ? undefined : options.alias.startsWith('alias/') ? options.alias : `alias/${options.alias}`;
    if (alias && (await this.describeKey(alias))) throw new Error(`alias ${alias} already exists`);
    const created = await this.kms.send(
      new CreateKeyCommand({
        Description: options.description,
        Tags: options.owner === undefined ? undefined : [{ TagKey: OWNER_TAG, TagValue: options.owner }],
      }),
    );
    const meta = created.KeyMetadata!;
    if (alias) {
      try {
        await this.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: meta.KeyId! }));
      } catch (err) {
        // Do not leave a key nobody asked for (a KMS key costs money each month).
        await this.kms.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId!, PendingWindowInDays: 7 })).catch(() => {});
        throw err;
      }
    }
    return toKeyInfo(meta, alias, options.owner);
  }

  async describeKey(keyId: string): Promise<KeyInfo | undefined> {
    return (await this.describe(keyId))?.info;
  }

  async listKeys(owner: string): Promise<KeyInfo[]> {
    const ids: string[] = [];
    let marker: string | undefined;
    do {
      const page = await this.kms.send(new ListKeysCommand({ Marker: marker }));
      for (const k of page.Keys ?? []) ids.push(k.KeyId!);
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    const owners = await mapLimit(ids, 8, (id) => this.ownerOf(id));
    const owned = await mapLimit(
      ids.filter((_, i) => owners[i] === owner),
      8,
      (id) => this.describe(id),
    );
    // A key scheduled for deletion (e.g. after its alias could not be created) is gone for the project.
    const live = owned.flatMap((k) => (k && k.state !== 'PendingDeletion' ? [k.info] : []));
    return live.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId));
  }

  private async describe(keyId: string): Promise<{ info: KeyInfo; state?: string } | undefined> {
    let meta: KeyMetadata;
    try {
      meta = (await this.kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    } catch (err) {
      if (err instanceof NotFoundException) return undefined;
      throw err;
    }
    const [alias, owner] = await Promise.all([this.aliasOf(meta.KeyId!), this.ownerOf(meta.KeyId!)]);
    return { info: toKeyInfo(meta, alias, owner), state: meta.KeyState };
  }

  private async ownerOf(keyId: string): Promise<string | undefined> {
    let marker: string | undefined;
    do {
      const page = await this.kms.send(new ListResourceTagsCommand({ KeyId: keyId, Marker: marker }));
      const tag = page.Tags?.find((t) => t.TagKey === OWNER_TAG);
      if (tag) return tag.TagValue;
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return undefined;
  }

  private async aliasOf(keyId: string): Promise<string | undefined> {
    const res = await this.kms.send(new ListAliasesCommand({ KeyId: keyId }));
    return res.Aliases?.find((a) => a.AliasName && !a.AliasName.startsWith('alias/aws/'))?.AliasName;
  }
}

function toKeyInfo(meta: KeyMetadata, alias: string | undefined, owner: string | undefined): KeyInfo {
  return {
    keyId: meta.KeyId!,
    arn: meta.Arn!,
    alias,
    description: meta.Description || undefined,
    enabled: meta.KeyState === 'Enabled',
    owner,
    createdAt: (meta.CreationDate ?? new Date(0)).toISOString(),
  };
}

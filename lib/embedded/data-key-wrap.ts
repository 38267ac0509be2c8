// How the local key service wraps a data key under a master key: AES-256-GCM with the encryption context
// as associated data, so a wrong context, another key or a damaged blob fails as it does on KMS.
//
// Blob (77 bytes): version (1) | master key id, the UUID's 16 bytes | nonce (12) | encrypted data key (32) | GCM tag (16)
// Associated data: version | key id | the context, its entries sorted by the UTF-8 bytes of the name, each
// as u32be name length, name, u32be value length, value (UTF-8).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KeyAccessError } from '../engine/ports.ts';

const VERSION = 1;
const ID_BYTES = 16;
const NONCE_BYTES = 12;
const DATA_KEY_BYTES = 32;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + ID_BYTES;
const BLOB_BYTES = HEADER_BYTES + NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES;

export const MASTER_KEY_BYTES = 32;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isKeyId(value: string): boolean {
  return UUID.test(value);
}

function idBytes(keyId: string): Buffer {
  if (!isKeyId(keyId)) throw new Error(`not a key id: ${keyId}`);
  return Buffer.from(keyId.replaceAll('-', ''), 'hex');
}

function idString(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function lengthPrefixed(bytes: Buffer): Buffer[] {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return [length, bytes];
}

export function encodeContext(context: Record<string, string>): Buffer {
  const entries = Object.entries(context).map(([name, value]) => [Buffer.from(name), Buffer.from(value)] as const);
  entries.sort(([a], [b]) => Buffer.compare(a, b));
  return Buffer.concat(entries.flatMap(([name, value]) => [...lengthPrefixed(name), ...lengthPrefixed(value)]));
}

/** A new random data key and its blob wrapped under `masterKey` (whose id is `keyId`). */
export function generateWrappedDataKey(masterKey: Buffer, keyId: string, context: Record<string, string>): { plaintext: Buffer; wrapped: Buffer } {
  const plaintext = randomBytes(DATA_KEY_BYTES);
  const header = Buffer.concat([Buffer.from([VERSION]), idBytes(keyId)]);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce);
  cipher.setAAD(Buffer.concat([header, encodeContext(context)]));
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { plaintext, wrapped: Buffer.concat([header, nonce, sealed, cipher.getAuthTag()]) };
}

/** The data key in `wrapped`; KeyAccessError when it was wrapped by another key, under another context, or is damaged. */
export function unwrapDataKey(masterKey: Buffer, keyId: string, wrapped: Buffer, context: Record<string, string>): Buffer {
  if (wrapped.length !== BLOB_BYTES || wrapped[0] !== VERSION) {
    throw new KeyAccessError(`the wrapped data key is damaged or was not made by this key service (${wrapped.length} bytes, version ${wrapped[0]})`);
  }
  const header = wrapped.subarray(0, HEADER_BYTES);
  const wrappedBy = idString(header.subarray(1));
  if (wrappedBy !== keyId) throw new KeyAccessError(`the data key was wrapped by key ${wrappedBy}, not by ${keyId}`);
  const nonce = wrapped.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', masterKey, nonce);
  decipher.setAAD(Buffer.concat([header, encodeContext(context)]));
  decipher.setAuthTag(wrapped.subarray(BLOB_BYTES - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(HEADER_BYTES + NONCE_BYTES, BLOB_BYTES - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new KeyAccessError(`the data key does not unwrap under key ${keyId} with this encryption context (wrong context, or a damaged blob)`);
  }
}

const ALIAS = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

/** `name` or `alias/name` as `alias/name`, checked as KMS checks it. */
export function aliasName(alias: string): string {
  const full = alias.startsWith('alias/') ? alias : `alias/${alias}`;
  if (!ALIAS.test(full) || full.startsWith('alias/aws/')) {
    throw new Error(`invalid key alias ${JSON.stringify(alias)}: letters, digits, "/", "_" and "-" only, not starting with aws/`);
  }
  return full;
}

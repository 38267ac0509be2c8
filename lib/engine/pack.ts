// Pack objects: many sealed chunks in one S3 object (~16 MiB), so a GiB costs tens of PUTs, not thousands.
//
// Layout:  chunk blobs... | sealed header | header length (u32 LE) | magic "OVBSPK01" (format version 01)
// The header (sealed with the domain key, bound to the pack key) lists for each chunk:
//   chunk id (32 bytes) | offset (u32 LE) | sealed length (u32 LE)
// so the chunk index can be rebuilt from S3 alone.
import { randomBytes } from 'node:crypto';
import { CHUNK_ID_BYTES, openMetadata, sealMetadata } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { ObjectStore } from './ports.ts';

const MAGIC_PREFIX = 'OVBSPK';
const PACK_VERSION = '01';
export const PACK_MAGIC = Buffer.from(MAGIC_PREFIX + PACK_VERSION);
const ENTRY_BYTES = CHUNK_ID_BYTES + 8;
const TRAILER_BYTES = 4 + PACK_MAGIC.length;

/** An object that is not a pack of the version this reader knows (a newer OpenVBS, or not a pack at all). */
export class PackFormatError extends Error {
  override name = 'PackFormatError';
  readonly packKey: string;
  /** The version the trailer names, when it has an OpenVBS pack magic. */
  readonly version: string | undefined;

  constructor(packKey: string, message: string, version?: string) {
    super(message);
    this.packKey = packKey;
    this.version = version;
  }
}

function checkMagic(packKey: string, magic: Buffer): void {
  if (magic.equals(PACK_MAGIC)) return;
  const text = magic.toString('latin1');
  if (text.startsWith(MAGIC_PREFIX)) {
    const version = text.slice(MAGIC_PREFIX.length);
    throw new PackFormatError(
      packKey,
      `${packKey} is not an OpenVBS pack of a known version: its trailer says format version ${JSON.stringify(version)}; this OpenVBS reads only ${PACK_VERSION}`,
      version,
    );
  }
  throw new PackFormatError(packKey, `${packKey} is not an OpenVBS pack: it does not end in ${PACK_MAGIC.toString()} (found 0x${magic.toString('hex')})`);
}

export interface PackEntry {
  id: Buffer;
  offset: number;
  length: number;
}

export function newPackKey(domainId: string): string {
  const packId = randomBytes(16).toString('hex');
  return `packs/${domainId}/${packId.slice(0, 2)}/${packId}`;
}

/**
 * Completes a pack whose chunks already fill `data[0, dataBytes)`: appends the sealed header and the
 * trailer, in place when `data` has room, and returns the whole pack body.
 */
export function finishPack(keys: DomainKeys, packKey: string, data: Buffer, dataBytes: number, entries: PackEntry[]): Buffer {
  const header = Buffer.allocUnsafe(entries.length * ENTRY_BYTES);
  entries.forEach((e, i) => {
    header.set(e.id, i * ENTRY_BYTES);
    header.writeUInt32LE(e.offset, i * ENTRY_BYTES + CHUNK_ID_BYTES);
    header.writeUInt32LE(e.length, i * ENTRY_BYTES + CHUNK_ID_BYTES + 4);
  });
  const sealedHeader = sealMetadata(keys, `pack:${packKey}`, header);
  const total = dataBytes + sealedHeader.length + TRAILER_BYTES;
  const body = total <= data.length ? data.subarray(0, total) : Buffer.concat([data.subarray(0, dataBytes)], total);
  let at = dataBytes;
  body.set(sealedHeader, at);
  at += sealedHeader.length;
  body.writeUInt32LE(sealedHeader.length, at);
  PACK_MAGIC.copy(body, at + 4);
  return body;
}

/** Reads and authenticates a pack's header: the basis for re-indexing and for checking a pack. */
export async function readPackHeader(store: ObjectStore, keys: DomainKeys, packKey: string, packSize: number): Promise<PackEntry[]> {
  if (packSize < TRAILER_BYTES) throw new PackFormatError(packKey, `${packKey} is not an OpenVBS pack: ${packSize} bytes is shorter than a pack trailer`);
  const trailer = await store.getRange(packKey, packSize - TRAILER_BYTES, TRAILER_BYTES);
  checkMagic(packKey, trailer.subarray(4));
  const headerLength = trailer.readUInt32LE(0);
  const sealed = await store.getRange(packKey, packSize - TRAILER_BYTES - headerLength, headerLength);
  const header = openMetadata(keys, `pack:${packKey}`, sealed);
  const entries: PackEntry[] = [];
  for (let at = 0; at < header.length; at += ENTRY_BYTES) {
    entries.push({
      id: Buffer.from(header.subarray(at, at + CHUNK_ID_BYTES)),
      offset: header.readUInt32LE(at + CHUNK_ID_BYTES),
      length: header.readUInt32LE(at + CHUNK_ID_BYTES + 4),
    });
  }
  return entries;
}

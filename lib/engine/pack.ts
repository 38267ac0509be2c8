// Pack objects: many sealed chunks in one S3 object (~16 MiB), so a GiB costs tens of PUTs, not thousands.
//
// Layout:  chunk blobs... | sealed header | header length (u32 LE) | magic "OVBSPK01"
// The header (sealed with the domain key, bound to the pack key) lists for each chunk:
//   chunk id (32 bytes) | offset (u32 LE) | sealed length (u32 LE)
// so the chunk index can be rebuilt from S3 alone.
import { randomBytes } from 'node:crypto';
import { CHUNK_ID_BYTES, openMetadata, sealMetadata } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { ObjectStore } from './ports.ts';

export const PACK_MAGIC = Buffer.from('OVBSPK01');
const ENTRY_BYTES = CHUNK_ID_BYTES + 8;
const TRAILER_BYTES = 4 + PACK_MAGIC.length;

export interface PackEntry {
  id: Buffer;
  offset: number;
  length: number;
}

export function newPackKey(domainId: string): string {
  const packId = randomBytes(16).toString('hex');
  return `packs/${domainId}/${packId.slice(0, 2)}/${packId}`;
}

/** Assembles the pack body from sealed chunks: one copy of each chunk, then header and trailer. */
export function buildPack(keys: DomainKeys, packKey: string, chunks: Array<{ id: Buffer; sealed: Buffer }>): { body: Buffer; entries: PackEntry[] } {
  const entries: PackEntry[] = [];
  const header = Buffer.allocUnsafe(chunks.length * ENTRY_BYTES);
  let dataBytes = 0;
  chunks.forEach((c, i) => {
    entries.push({ id: c.id, offset: dataBytes, length: c.sealed.length });
    header.set(c.id, i * ENTRY_BYTES);
    header.writeUInt32LE(dataBytes, i * ENTRY_BYTES + CHUNK_ID_BYTES);
    header.writeUInt32LE(c.sealed.length, i * ENTRY_BYTES + CHUNK_ID_BYTES + 4);
    dataBytes += c.sealed.length;
  });
  const sealedHeader = sealMetadata(keys, `pack:${packKey}`, header);
  const body = Buffer.allocUnsafe(dataBytes + sealedHeader.length + TRAILER_BYTES);
  let at = 0;
  for (const c of chunks) {
    body.set(c.sealed, at);
    at += c.sealed.length;
  }
  body.set(sealedHeader, at);
  at += sealedHeader.length;
  body.writeUInt32LE(sealedHeader.length, at);
  PACK_MAGIC.copy(body, at + 4);
  return { body, entries };
}

/** Reads and authenticates a pack's header: the basis for re-indexing and for checking a pack. */
export async function readPackHeader(store: ObjectStore, keys: DomainKeys, packKey: string, packSize: number): Promise<PackEntry[]> {
  const trailer = await store.getRange(packKey, packSize - TRAILER_BYTES, TRAILER_BYTES);
  if (!trailer.subarray(4).equals(PACK_MAGIC)) throw new Error(`${packKey} is not an OpenVBS pack`);
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

// Integrity check (`openvbs check`, the scheduled check-run): does every backup that can be restored still
// restore? Per key domain of a project, in three passes:
//
// 1. Metadata, for every `available` or `restoring` backup, segment by segment: the manifest exists and
//    decodes with the domain's keys and fits the backup's geometry; every chunk it names is in the chunk index
//    (strongly consistent lookups); the pack the index names exists (one listing of the domain's packs) and its
//    sealed header opens and lists the chunk at the indexed offset and length.
// 2. Data (readDataPercent > 0): the referenced packs, all of them or a subset picked by a hash of (seed, pack
//    key), are read whole in ranged reads and every chunk their headers list is opened on the chunk pool as a
//    restore opens it (GCM tag, bounded decompression, chunk id).
// 3. Attribution, only when pass 2 found bad chunks: the manifests are read again to name the backups and
//    blocks that need them.
//
// Damage is reported, not thrown: a check goes on past it and names backup, segment, blocks, pack and chunk.
// Storage errors other than a missing object (throttling after the SDK's retries, a lost connection) do end
// the check, since they say nothing about the data.
//
// Memory, whatever the repository's size: per key domain the sizes of its packs (one entry per pack, about
// 150 bytes) and a few numbers per referenced pack; up to HEADER_CACHE_PACKS parsed pack headers (a 16 MiB
// pack of 64 KiB sub-chunks lists ~600 chunks, ~100 KB parsed); one decoded manifest per segment in flight
// (SEGMENTS_IN_FLIGHT); in pass 2 at most `restoreConcurrency` ranges, each a pool slot of at most
// `restoreRangeBytes` sealed bytes (or one larger chunk) and one of at most OPEN_OUT_BYTES of plaintext:
// 4 x (4 + 16) MiB with the defaults. The chunk ids of damaged chunks are kept until pass 3.
import { createHash } from 'node:crypto';
import type { BackupStore } from '../catalog/backups.ts';
import { DEFAULT_EXTENT_BLOCKS } from './backup.ts';
import { CHUNK_ID_BYTES } from './chunk-codec.ts';
import type { EngineDeps } from './engine.ts';
import type { KeyDomain } from './key-domains.ts';
import { ZERO_ID, blockPieces, decodeManifest, idLeafBytes, manifestChunkId, manifestKey } from './manifest.ts';
import type { SegmentManifest } from './manifest.ts';
import { readPackHeader } from './pack.ts';
import type { PackEntry } from './pack.ts';
import type { BackupRecord, ChunkLocation } from './ports.ts';
import { ObjectNotFoundError } from './ports.ts';
import { createLimiter, mapLimit } from '../util/concurrency.ts';

/** Segments of one backup checked at once (manifest read, index lookups, header reads). */
const SEGMENTS_IN_FLIGHT = 4;
/** Parsed pack headers kept (least recently used dropped first). */
const HEADER_CACHE_PACKS = 128;
/** Most plaintext one open request may produce: bounds the chunks per range by the largest chunk's size. */
const OPEN_OUT_BYTES = 16 * 1024 * 1024;
/** Damage entries kept in a report by default (the counts cover them all). */
const DEFAULT_MAX_DAMAGE = 1000;

export type DamageKind =
  | 'key-domain'
  | 'manifest-missing'
  | 'manifest-invalid'
  | 'chunk-not-indexed'
  | 'pack-missing'
  | 'pack-header'
  | 'chunk-not-in-header'
  | 'chunk-data';

export interface CheckDamage {
  kind: DamageKind;
  projectId: string;
  /** The backup that cannot be restored whole; absent for a bad chunk no checked backup refers to. */
  backupId?: string;
  volumeId?: string;
  /** The segment (manifest) affected; absent when the whole backup is. */
  segment?: number;
  /** The volume blocks that would not restore, as inclusive [first, last] runs. */
  blocks?: Array<[number, number]>;
  pack?: string;
  /** The chunks concerned (hex ids). */
  chunkIds?: string[];
  what: string;
}

export interface CheckOptions {
  /** The projects to check; default every project with a manifest in the store. */
  projectIds?: string[];
  /** Percent (0–100) of the referenced packs whose chunks are read and opened; 0 (default) checks metadata only. */
  readDataPercent?: number;
  /** Which packs a partial read covers: another seed, another subset (default ''). */
  seed?: string;
  /** Damage entries kept in the report; the counts cover every one. Default 1000. */
  maxDamage?: number;
  onProgress?: (p: CheckProgress) => void;
}

export interface CheckProgress {
  phase: 'metadata' | 'data';
  projectId: string;
  backupsDone: number;
  backupsTotal: number;
  bytesRead: number;
}

export interface CheckReport {
  /** True when no damage was found. */
  ok: boolean;
  readDataPercent: number;
  seed: string;
  projects: number;
  /** Backups checked (available or restoring). */
  backups: number;
  /** Manifests read and decoded. */
  manifests: number;
  /** Chunk references looked up (each distinct chunk of each manifest). */
  chunks: number;
  /** Distinct packs whose header was checked. */
  packs: number;
  /** Packs read in full, and the chunks opened from them. */
  packsRead: number;
  chunksRead: number;
  /** Pack bytes read for pass 2. */
  bytesRead: number;
  seconds: number;
  /** Seconds spent in pass 2 (reading and opening chunks). */
  readSeconds: number;
  /** bytesRead / readSeconds, in MB (10^6 bytes) per second. */
  readMBps: number;
  /** Damaged backups, and damage entries found (some may be left out of `damage`, see `damageTruncated`). */
  damagedBackups: number;
  damageCount: number;
  damage: CheckDamage[];
  damageTruncated: boolean;
}

export interface CheckDeps {
  engine: EngineDeps;
  backups: Pick<BackupStore, 'listBackups'>;
}

/** Whether a partial read covers this pack: a hash of (seed, pack key) below the percentage. */
export function packSelected(packKey: string, percent: number, seed = ''): boolean {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  const h = createHash('sha256').update(seed).update('\n').update(packKey).digest();
  return (h.readUInt32BE(0) / 2 ** 32) * 100 < percent;
}

/**
 * A failure of the storage itself rather than of what it holds: a system error (ECONNRESET, EIO...) or an AWS
 * service error other than a range past the object's end. It ends the check; anything else a pack read throws
 * (short read, bad trailer, header that does not open) is damage of that pack.
 */
function isStorageFault(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status !== undefined && status !== 416;
}

/** Inclusive runs of ascending block numbers: [3, 4, 5, 9] -> [[3, 5], [9, 9]]. */
export function blockRuns(blocks: readonly number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const b of blocks) {
    const last = runs.at(-1);
    if (last && last[1] + 1 === b) last[1] = b;
    else runs.push([b, b]);
  }
  return runs;
}

/** A decoded manifest as a list of distinct chunks and which of them each block uses. */
interface SegmentChunks {
  ids: string[];
  /** Chunk numbers (into ids) of block j. */
  blockChunks(j: number): readonly number[];
}

function segmentChunks(m: SegmentManifest): SegmentChunks {
  if (m.version === 2) {
    const ids = Array.from({ length: m.chunkLengths.length }, (_, c) => manifestChunkId(m, c).toString('hex'));
    return { ids, blockChunks: (j) => m.pieces[j]!.map((p) => p.chunk) };
  }
  const ids: string[] = [];
  const number = new Map<string, number>();
  const perBlock: number[] = [];
  for (let j = 0; j < m.blockCount; j++) {
    const id = m.ids.subarray(j * CHUNK_ID_BYTES, (j + 1) * CHUNK_ID_BYTES);
    if (id.equals(ZERO_ID)) {
      perBlock.push(-1);
      continue;
    }
    const hex = id.toString('hex');
    let c = number.get(hex);
    if (c === undefined) {
      number.set(hex, (c = ids.length));
      ids.push(hex);
    }
    perBlock.push(c);
  }
  return { ids, blockChunks: (j) => (perBlock[j]! < 0 ? [] : [perBlock[j]!]) };
}

type HeaderResult = { ok: true; entries: Map<string, PackEntry> } | { ok: false; reason: string };

/** What pass 2 needs about a referenced pack. */
interface PackUse {
  /** How its chunks' ids are checked (all chunks of a pack come from one segment of one backup). */
  leafBytes: number;
  /** The largest plaintext a chunk of it may open to (the referring backups' largest chunk). */
  maxPlain: number;
}

interface BadChunk {
  pack: string;
  reason: string;
}

class Checker {
  readonly report: CheckReport;
  private readonly damagedBackups = new Set<string>();
  private readonly maxDamage: number;
  private readonly started = Date.now();
  private readSeconds = 0;
  private readonly packsChecked = new Set<string>();
  readonly deps: CheckDeps;
  readonly options: CheckOptions;

  constructor(deps: CheckDeps, options: CheckOptions) {
    this.deps = deps;
    this.options = options;
    this.maxDamage = options.maxDamage ?? DEFAULT_MAX_DAMAGE;
    this.report = {
      ok: true,
      readDataPercent: Math.min(100, Math.max(0, options.readDataPercent ?? 0)),
      seed: options.seed ?? '',
      projects: 0,
      backups: 0,
      manifests: 0,
      chunks: 0,
      packs: 0,
      packsRead: 0,
      chunksRead: 0,
      bytesRead: 0,
      seconds: 0,
      readSeconds: 0,
      readMBps: 0,
      damagedBackups: 0,
      damageCount: 0,
      damage: [],
      damageTruncated: false,
    };
  }

  damage(d: CheckDamage): void {
    this.report.ok = false;
    this.report.damageCount++;
    if (d.backupId) this.damagedBackups.add(`${d.projectId}/${d.backupId}`);
    if (this.report.damage.length < this.maxDamage) this.report.damage.push(d);
    else this.report.damageTruncated = true;
  }

  finish(): CheckReport {
    const r = this.report;
    r.damagedBackups = this.damagedBackups.size;
    r.packs = this.packsChecked.size;
    r.seconds = (Date.now() - this.started) / 1000;
    r.readSeconds = this.readSeconds;
    r.readMBps = this.readSeconds > 0 ? r.bytesRead / 1e6 / this.readSeconds : 0;
    return r;
  }

  async project(projectId: string): Promise<void> {
    const backups = (await this.deps.backups.listBackups(projectId)).filter((b) => b.status === 'available' || b.status === 'restoring');
    this.report.projects++;
    const byDomain = new Map<string, BackupRecord[]>();
    for (const b of backups) {
      const list = byDomain.get(b.domainId);
      if (list) list.push(b);
      else byDomain.set(b.domainId, [b]);
    }
    const progress = { done: 0, total: backups.length };
    for (const list of byDomain.values()) await new DomainCheck(this, projectId, list, progress).run();
  }

  addReadTime(seconds: number): void {
    this.readSeconds += seconds;
  }

  packChecked(pack: string): void {
    this.packsChecked.add(pack);
  }
}

/** One key domain of a project: its backups share chunks and packs. */
class DomainCheck {
  private readonly c: Checker;
  private readonly projectId: string;
  private readonly backups: BackupRecord[];
  private readonly progress: { done: number; total: number };
  private readonly deps: EngineDeps;
  private domain!: KeyDomain;
  private packSizes = new Map<string, number>();
  /** Packs the index names that are confirmed absent. */
  private readonly missing = new Set<string>();
  private readonly uses = new Map<string, PackUse>();
  /** Pack header results: failures for good, parsed headers least recently used first. */
  private readonly badHeaders = new Map<string, string>();
  private readonly headers = new Map<string, Promise<HeaderResult>>();

  constructor(c: Checker, projectId: string, backups: BackupRecord[], progress: { done: number; total: number }) {
    this.c = c;
    this.projectId = projectId;
    this.backups = backups;
    this.progress = progress;
    this.deps = c.deps.engine;
  }

  private get domainId(): string {
    return this.backups[0]!.domainId;
  }

  async run(): Promise<void> {
    const first = this.backups[0]!;
    try {
      this.domain = await this.deps.domains.forBackup(this.projectId, first.kmsKeyId, first.domainId);
    } catch (err) {
      for (const b of this.backups) {
        this.c.report.backups++;
        this.damage(b, { kind: 'key-domain', what: `key domain ${b.domainId} cannot be opened: ${(err as Error).message}` });
      }
      return;
    }
    this.deps.pool.registerDomain(this.domain.domainId, this.domain.keys);
    for await (const obj of this.deps.store.list(`packs/${this.domainId}/`)) this.packSizes.set(obj.key, obj.size);

    for (const b of this.backups) {
      this.c.report.backups++;
      const segments = Array.from({ length: b.segmentCount }, (_, s) => s);
      await mapLimit(segments, SEGMENTS_IN_FLIGHT, (s) => this.checkSegment(b, s));
      this.progress.done++;
      this.c.options.onProgress?.({ phase: 'metadata', projectId: this.projectId, backupsDone: this.progress.done, backupsTotal: this.progress.total, bytesRead: this.c.report.bytesRead });
    }

    const percent = this.c.report.readDataPercent;
    if (percent <= 0) return;
    const selected = [...this.uses.keys()].filter((p) => !this.badHeaders.has(p) && this.packSizes.has(p) && packSelected(p, percent, this.c.report.seed));
    const bad = await this.readPacks(selected);
    if (bad.size) await this.attribute(bad);
  }

  private damage(b: BackupRecord, d: Omit<CheckDamage, 'projectId' | 'backupId' | 'volumeId'>): void {
    this.c.damage({ projectId: this.projectId, backupId: b.backupId, volumeId: b.volumeId, ...d });
  }

  /** The blocks of the segment that use any of `chunks` (chunk numbers of `sc`). */
  private blocksUsing(m: SegmentManifest, sc: SegmentChunks, chunks: ReadonlySet<number>): Array<[number, number]> {
    const blocks: number[] = [];
    for (let j = 0; j < m.blockCount; j++) if (sc.blockChunks(j).some((n) => chunks.has(n))) blocks.push(m.firstBlock + j);
    return blockRuns(blocks);
  }

  private segmentBlocks(b: BackupRecord, segment: number): Array<[number, number]> {
    const first = segment * b.segmentBlocks;
    const last = Math.min((segment + 1) * b.segmentBlocks, Math.ceil(b.sizeBytes / b.blockSize)) - 1;
    return [[first, last]];
  }

  /** The segment's manifest, or undefined after reporting why it cannot be used. */
  private async loadManifest(b: BackupRecord, segment: number, report: boolean): Promise<SegmentManifest | undefined> {
    const key = manifestKey(b.manifestPrefix, segment);
    let stored: Buffer;
    try {
      stored = await this.deps.store.get(key);
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
      if (report) this.damage(b, { kind: 'manifest-missing', segment, blocks: this.segmentBlocks(b, segment), what: `manifest ${key} is missing` });
      return undefined;
    }
    let m: SegmentManifest;
    try {
      m = decodeManifest(this.domain.keys, b.backupId, segment, stored);
      const totalBlocks = Math.ceil(b.sizeBytes / b.blockSize);
      const firstBlock = segment * b.segmentBlocks;
      if (m.firstBlock !== firstBlock || m.blockCount !== Math.min(b.segmentBlocks, totalBlocks - firstBlock)) {
        throw new Error(`it covers blocks ${m.firstBlock}+${m.blockCount}, the backup's geometry says ${firstBlock}+${Math.min(b.segmentBlocks, totalBlocks - firstBlock)}`);
      }
      if (m.version === 2 && m.blockSize !== b.blockSize) throw new Error(`its block size ${m.blockSize} is not the backup's ${b.blockSize}`);
      // Pieces past the end of a short last block (the decoder checks them against the block size only).
      const j = m.blockCount - 1;
      blockPieces(m, j, Math.min(b.blockSize, b.sizeBytes - (m.firstBlock + j) * b.blockSize));
    } catch (err) {
      if (report) this.damage(b, { kind: 'manifest-invalid', segment, blocks: this.segmentBlocks(b, segment), what: `manifest ${key} does not verify: ${(err as Error).message}` });
      return undefined;
    }
    if (report) this.c.report.manifests++;
    return m;
  }

  private async checkSegment(b: BackupRecord, segment: number): Promise<void> {
    const m = await this.loadManifest(b, segment, true);
    if (!m) return;
    const sc = segmentChunks(m);
    this.c.report.chunks += sc.ids.length;
    const found = await this.deps.index.lookup(this.domainId, sc.ids);
    // Problems by (kind, pack, reason): one damage entry each, with its chunks and blocks.
    const problems = new Map<string, { kind: DamageKind; pack?: string; what: string; chunks: Set<number> }>();
    const problem = (kind: DamageKind, pack: string | undefined, what: string, chunk: number) => {
      const k = `${kind}\n${pack ?? ''}\n${what}`;
      let p = problems.get(k);
      if (!p) problems.set(k, (p = { kind, ...(pack ? { pack } : {}), what, chunks: new Set() }));
      p.chunks.add(chunk);
    };
    const byPack = new Map<string, Array<{ chunk: number; loc: ChunkLocation }>>();
    sc.ids.forEach((hex, chunk) => {
      const loc = found.get(hex);
      if (!loc) return problem('chunk-not-indexed', undefined, 'chunk is not in the chunk index', chunk);
      const list = byPack.get(loc.pack);
      if (list) list.push({ chunk, loc });
      else byPack.set(loc.pack, [{ chunk, loc }]);
    });
    const leafBytes = idLeafBytes(m);
    const maxPlain = m.version === 1 ? b.blockSize : (b.extentBlocks ?? DEFAULT_EXTENT_BLOCKS) * b.blockSize;
    for (const [pack, list] of byPack) {
      if (!this.packSizes.has(pack)) await this.relist(pack);
      if (!this.packSizes.has(pack)) {
        const what = pack.startsWith(`packs/${this.domainId}/`) ? 'pack is missing' : `the index names ${pack}, which is not a pack of key domain ${this.domainId}`;
        for (const { chunk } of list) problem('pack-missing', pack, what, chunk);
        continue;
      }
      this.c.packChecked(pack);
      const use = this.uses.get(pack);
      if (!use) this.uses.set(pack, { leafBytes, maxPlain });
      else use.maxPlain = Math.max(use.maxPlain, maxPlain);
      const header = await this.header(pack);
      if (!header.ok) {
        for (const { chunk } of list) problem('pack-header', pack, `pack header does not verify: ${header.reason}`, chunk);
        continue;
      }
      for (const { chunk, loc } of list) {
        const entry = header.entries.get(sc.ids[chunk]!);
        if (!entry) problem('chunk-not-in-header', pack, 'the pack header does not list the chunk', chunk);
        else if (entry.offset !== loc.offset || entry.length !== loc.length) {
          problem('chunk-not-in-header', pack, `the index says offset ${loc.offset} length ${loc.length}, the pack header ${entry.offset} and ${entry.length}`, chunk);
        }
      }
    }
    for (const p of problems.values()) {
      this.damage(b, {
        kind: p.kind,
        segment,
        blocks: this.blocksUsing(m, sc, p.chunks),
        ...(p.pack ? { pack: p.pack } : {}),
        chunkIds: [...p.chunks].map((n) => sc.ids[n]!),
        what: p.what,
      });
    }
  }

  /**
   * Looks for a pack the first listing did not have: one written since (a repack moves index entries to a new
   * pack while a check runs) is not missing.
   */
  private async relist(pack: string): Promise<void> {
    if (!pack.startsWith(`packs/${this.domainId}/`) || this.missing.has(pack)) return;
    for await (const obj of this.deps.store.list(pack)) if (obj.key === pack) this.packSizes.set(pack, obj.size);
    if (!this.packSizes.has(pack)) this.missing.add(pack);
  }

  private header(pack: string): Promise<HeaderResult> {
    const failed = this.badHeaders.get(pack);
    if (failed !== undefined) return Promise.resolve({ ok: false, reason: failed });
    const cached = this.headers.get(pack);
    if (cached) {
      this.headers.delete(pack); // most recently used goes last
      this.headers.set(pack, cached);
      return cached;
    }
    const read = readPackHeader(this.deps.store, this.domain.keys, pack, this.packSizes.get(pack)!).then(
      (entries): HeaderResult => ({ ok: true, entries: new Map(entries.map((e) => [e.id.toString('hex'), e])) }),
      (err: unknown): HeaderResult => {
        if (err instanceof ObjectNotFoundError) return { ok: false, reason: 'pack is missing' };
        if (isStorageFault(err)) throw err;
        return { ok: false, reason: (err as Error).message };
      },
    );
    read.then(
      (r) => {
        if (!r.ok) {
          this.badHeaders.set(pack, r.reason);
          this.headers.delete(pack);
        }
      },
      () => this.headers.delete(pack),
    );
    this.headers.set(pack, read);
    while (this.headers.size > HEADER_CACHE_PACKS) this.headers.delete(this.headers.keys().next().value!);
    return read;
  }

  /** Pass 2: reads the packs and opens every chunk they list; returns the chunks that failed. */
  private async readPacks(packs: string[]): Promise<Map<string, BadChunk>> {
    const bad = new Map<string, BadChunk>();
    const started = performance.now();
    const { restoreConcurrency, restoreRangeBytes } = this.deps.config;
    const limit = createLimiter(restoreConcurrency);
    let failure: unknown;
    // Packs one after the other, each one's ranges `restoreConcurrency` at a time; a pack's header is read
    // while the previous pack's last ranges run.
    const running = new Set<Promise<void>>();
    try {
      for (const pack of packs) {
        if (failure !== undefined) break;
        const header = await this.header(pack);
        if (!header.ok) continue; // reported in pass 1 when referenced
        this.c.report.packsRead++;
        const use = this.uses.get(pack)!;
        const entries = [...header.entries.values()].sort((a, b) => a.offset - b.offset);
        for (const range of chunkRanges(entries, restoreRangeBytes, use.maxPlain)) {
          while (running.size >= restoreConcurrency) await Promise.race(running);
          if (failure !== undefined) break;
          const task: Promise<void> = limit(() => this.readRange(pack, range, use, bad))
            .catch((err: unknown) => {
              failure ??= err;
            })
            .finally(() => running.delete(task));
          running.add(task);
        }
      }
    } finally {
      await Promise.all(running);
      this.c.addReadTime((performance.now() - started) / 1000);
    }
    if (failure !== undefined) throw failure;
    return bad;
  }

  private async readRange(pack: string, range: PackEntry[], use: PackUse, bad: Map<string, BadChunk>): Promise<void> {
    const { pool, store } = this.deps;
    const start = range[0]!.offset;
    const length = Math.max(...range.map((e) => e.offset + e.length)) - start;
    const sealed = pool.acquire(length);
    try {
      try {
        const data = await store.getRange(pack, start, length, sealed.buf.subarray(0, length));
        if (data.buffer !== sealed.buf.buffer) data.copy(sealed.buf);
      } catch (err) {
        if (isStorageFault(err)) throw err;
        for (const e of range) bad.set(e.id.toString('hex'), { pack, reason: err instanceof ObjectNotFoundError ? 'pack is missing' : `pack could not be read: ${(err as Error).message}` });
        return;
      }
      this.c.report.bytesRead += length;
      // The pool stops at the first chunk that fails: note it and go on with the ones after it.
      let rest = range;
      while (rest.length) {
        const opened = await pool.open(
          this.domain.domainId,
          sealed,
          length,
          rest.map((e) => ({ offset: e.offset - start, length: e.length })),
          Buffer.concat(rest.map((e) => e.id)),
          use.maxPlain,
          rest.length * use.maxPlain,
          use.leafBytes,
        );
        if (opened.ok) {
          pool.release(opened.out);
          this.c.report.chunksRead += rest.length;
          break;
        }
        this.c.report.chunksRead += opened.index + 1;
        const failed = rest[opened.index]!;
        bad.set(failed.id.toString('hex'), { pack, reason: `chunk does not verify: ${opened.reason}` });
        rest = rest.slice(opened.index + 1);
      }
    } finally {
      pool.release(sealed);
    }
    this.c.options.onProgress?.({ phase: 'data', projectId: this.projectId, backupsDone: this.progress.done, backupsTotal: this.progress.total, bytesRead: this.c.report.bytesRead });
  }

  /** Pass 3: names the backups, segments and blocks that use the bad chunks. */
  private async attribute(bad: Map<string, BadChunk>): Promise<void> {
    const referenced = new Set<string>();
    for (const b of this.backups) {
      const segments = Array.from({ length: b.segmentCount }, (_, s) => s);
      await mapLimit(segments, SEGMENTS_IN_FLIGHT, async (segment) => {
        const m = await this.loadManifest(b, segment, false);
        if (!m) return; // reported in pass 1
        const sc = segmentChunks(m);
        const byProblem = new Map<string, { pack: string; reason: string; chunks: Set<number> }>();
        sc.ids.forEach((hex, chunk) => {
          const hit = bad.get(hex);
          if (!hit) return;
          referenced.add(hex);
          const k = `${hit.pack}\n${hit.reason}`;
          let p = byProblem.get(k);
          if (!p) byProblem.set(k, (p = { ...hit, chunks: new Set() }));
          p.chunks.add(chunk);
        });
        for (const p of byProblem.values()) {
          this.damage(b, { kind: 'chunk-data', segment, blocks: this.blocksUsing(m, sc, p.chunks), pack: p.pack, chunkIds: [...p.chunks].map((n) => sc.ids[n]!), what: p.reason });
        }
      });
    }
    // A bad chunk no checked backup uses still matters: a later backup may deduplicate against it.
    for (const [hex, hit] of bad) {
      if (referenced.has(hex)) continue;
      this.c.damage({ kind: 'chunk-data', projectId: this.projectId, pack: hit.pack, chunkIds: [hex], what: `${hit.reason} (no checked backup uses it; later backups may deduplicate against it)` });
    }
  }
}

/**
 * Groups a pack's entries (ascending offsets) into ranged reads: at most `rangeBytes` of sealed data (or one
 * larger chunk), and few enough chunks that their plaintexts fit OPEN_OUT_BYTES at `maxPlain` each.
 */
export function chunkRanges(entries: readonly PackEntry[], rangeBytes: number, maxPlain: number): PackEntry[][] {
  const perRange = Math.max(1, Math.floor(OPEN_OUT_BYTES / maxPlain));
  const ranges: PackEntry[][] = [];
  let current: PackEntry[] = [];
  let start = 0;
  for (const e of entries) {
    if (current.length && (e.offset + e.length - start > rangeBytes || current.length >= perRange)) {
      ranges.push(current);
      current = [];
    }
    if (!current.length) start = e.offset;
    current.push(e);
  }
  if (current.length) ranges.push(current);
  return ranges;
}

/** Every project with a manifest in the store (the catalog has no index over projects). */
export async function projectsInStore(deps: Pick<EngineDeps, 'store'>): Promise<string[]> {
  const projects = new Set<string>();
  for await (const { key } of deps.store.list('manifests/')) {
    const project = key.split('/')[1];
    if (project) projects.add(project);
  }
  return [...projects].sort();
}

/** Checks the projects' backups; see the top of the file. Damage is in the report; storage failures throw. */
export async function checkRepository(deps: CheckDeps, options: CheckOptions = {}): Promise<CheckReport> {
  const checker = new Checker(deps, options);
  const projects = options.projectIds ?? (await projectsInStore(deps.engine));
  for (const projectId of projects) await checker.project(projectId);
  return checker.finish();
}

// The VolumeProvider contract: one suite every provider passes (the file provider on local disks, EBS on the
// emulator). A test file calls `volumeProviderContract(name, makeFixture)`; the fixture makes servers and
// disks the way its provider knows them and declares what the provider (or the emulator under it) can do.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerNotFoundError } from '../../lib/engine/ports.ts';
import type { BlockReader, ByteRange, GroupSnapshot, ReadSource, ServerStatus, VolumeProvider } from '../../lib/engine/ports.ts';

/** The block size of the contract's data (the EBS block size and the engine's default). */
export const BLOCK = 512 * 1024;

/** A server as the fixture made it: disks in the order asked. */
export interface CreatedServer {
  serverId: string;
  disks: Array<{ volumeId: string; sizeBytes: number; kmsKeyId?: string }>;
}

export interface ProviderFixture {
  provider: VolumeProvider;
  projectId: string;
  /** Disk sizes the suite asks for are multiples of this (EBS: 1 GiB; files: any multiple of 512 KiB). */
  sizeUnitBytes: number;
  /**
   * What `changedRanges` reports between two snapshots of a disk: `all` (every block written or rewritten in
   * the second), `rewritten` (only blocks the first snapshot also holds: the emulator's ListChangedBlocks
   * never lists blocks new in the second snapshot), `none` (the provider cannot tell: undefined or absent).
   */
  changedBlocks: 'all' | 'rewritten' | 'none';
  /** A server with disks of these sizes in this status; disks get ids the provider knows. */
  createServer(disks: Array<{ sizeBytes: number; encrypted?: boolean }>, status: ServerStatus): Promise<CreatedServer>;
  /** Writes to the live disk. Absent when live disks cannot hold data here (EBS in the emulator): the suite then seeds snapshots instead. */
  writeDisk?(volumeId: string, offset: number, data: Buffer): Promise<void>;
  /**
   * Present when the provider cannot write live disks. A completed snapshot of the disk holding exactly these
   * non-zero blocks (the whole content), a child of `parentSnapshotId` when given (EBS: StartSnapshot,
   * PutSnapshotBlock, CompleteSnapshot).
   */
  seedSnapshot?(volumeId: string, blocks: Array<{ index: number; data: Buffer }>, parentSnapshotId?: string): Promise<string>;
  /**
   * After a restore into disk `volumeId` of `serverId` (openWriter, flush, close): the volume that now holds
   * the restored data and how to read it (EBS: the new volume, through the snapshot it was created from).
   */
  restoredSource(serverId: string, volumeId: string): Promise<{ volumeId: string; source?: ReadSource }>;
  close(): Promise<void>;
}

const block = (seed: string) => {
  const b = randomBytes(BLOCK);
  b.write(seed, 0); // readable in a failed assertion's first bytes
  return b;
};

/** Merges ranges into ascending disjoint ones. */
export function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.offset <= last.offset + last.length) last.length = Math.max(last.length, r.offset + r.length - last.offset);
    else out.push({ ...r });
  }
  return out;
}

const blockRanges = (indexes: number[]) => mergeRanges(indexes.map((i) => ({ offset: i * BLOCK, length: BLOCK })));

async function readAt(reader: { read(into: Buffer, offset: number): Promise<number> }, offset: number, length: number): Promise<Buffer> {
  const into = Buffer.alloc(length);
  const n = await reader.read(into, offset);
  return into.subarray(0, n);
}

function expectAscendingDisjoint(ranges: ByteRange[]) {
  for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.offset).toBeGreaterThanOrEqual(ranges[i - 1]!.offset + ranges[i - 1]!.length);
}

export function volumeProviderContract(name: string, makeFixture: () => Promise<ProviderFixture>): void {
  describe(`VolumeProvider contract: ${name}`, () => {
    let fx: ProviderFixture;
    let provider: VolumeProvider;
    let projectId: string;
    let unit: number;
    const readers: BlockReader[] = [];

    beforeAll(async () => {
      fx = await makeFixture();
      provider = fx.provider;
      projectId = fx.projectId;
      unit = fx.sizeUnitBytes;
      expect(unit % BLOCK).toBe(0);
    });
    afterAll(async () => {
      await Promise.allSettled(readers.map((r) => r.close()));
      await fx?.close();
    });

    const open = async (volumeId: string, source?: ReadSource) => {
      const reader = await provider.openReader(projectId, volumeId, source);
      readers.push(reader);
      return reader;
    };

    /** A snapshot of the disk holding these blocks: written to the live disk and snapshotted, or seeded. */
    const snapshotHolding = async (serverId: string, volumeId: string, blocks: Array<{ index: number; data: Buffer }>, parent?: string) => {
      if (fx.writeDisk) {
        for (const b of blocks) await fx.writeDisk(volumeId, b.index * BLOCK, b.data);
        const group = await provider.snapshotDisks(projectId, serverId, [volumeId]);
        return group.disks[0]!.snapshotId;
      }
      if (!fx.seedSnapshot) throw new Error('the fixture must either write disks or seed snapshots');
      return fx.seedSnapshot(volumeId, blocks, parent);
    };

    describe('inventory', () => {
      let server: CreatedServer;
      beforeAll(async () => {
        server = await fx.createServer([{ sizeBytes: unit }, { sizeBytes: 2 * unit, encrypted: true }], 'running');
      });

      it('lists the server with its disks: size, device, encryption key', async () => {
        const listed = (await provider.listServers(projectId)).find((s) => s.serverId === server.serverId);
        expect(listed).toBeDefined();
        const described = await provider.describeServer(projectId, server.serverId);
        expect(described).toEqual(listed);
        expect(described.status).toBe('running');
        expect(typeof described.name).toBe('string');
        expect(described.disks).toHaveLength(2);
        const devices = described.disks.map((d) => d.device);
        expect(new Set(devices).size).toBe(2);
        for (const d of devices) expect(d).toMatch(/^\/dev\/\w+$/);
        for (const made of server.disks) {
          const disk = described.disks.find((d) => d.volumeId === made.volumeId);
          expect(disk, made.volumeId).toBeDefined();
          expect(disk!.sizeBytes).toBe(made.sizeBytes);
          expect(disk!.kmsKeyId).toBe(made.kmsKeyId);
          expect(typeof disk!.bootable).toBe('boolean');
        }
        expect(server.disks[0]!.kmsKeyId).toBeUndefined();
        expect(server.disks[1]!.kmsKeyId).toBeTruthy();
      });

      it('describes each disk as a volume', async () => {
        for (const made of server.disks) {
          const info = await provider.describe(projectId, made.volumeId);
          expect(info.volumeId).toBe(made.volumeId);
          expect(info.sizeBytes).toBe(made.sizeBytes);
          expect(info.kmsKeyId).toBe(made.kmsKeyId);
        }
      });

      it('knows no unknown server, and no server of another project', async () => {
        await expect(provider.describeServer(projectId, `no-such-server-${randomBytes(4).toString('hex')}`)).rejects.toBeInstanceOf(ServerNotFoundError);
        const stranger = `other-${randomBytes(4).toString('hex')}`;
        await expect(provider.describeServer(stranger, server.serverId)).rejects.toBeInstanceOf(ServerNotFoundError);
        expect((await provider.listServers(stranger)).map((s) => s.serverId)).not.toContain(server.serverId);
        await expect(provider.describe(stranger, server.disks[0]!.volumeId)).rejects.toThrow();
        await expect(provider.snapshotDisks(stranger, server.serverId, [server.disks[0]!.volumeId])).rejects.toBeInstanceOf(ServerNotFoundError);
      });

      it('turns a server off and on', async () => {
        await provider.setServerPower(projectId, server.serverId, false);
        expect((await provider.describeServer(projectId, server.serverId)).status).toBe('stopped');
        await provider.setServerPower(projectId, server.serverId, false); // already off: no error
        await provider.setServerPower(projectId, server.serverId, true);
        expect((await provider.describeServer(projectId, server.serverId)).status).toBe('running');
      });
    });

    describe('group snapshot', () => {
      let server: CreatedServer;
      let group: GroupSnapshot;
      const before = [block('disk0-before'), block('disk1-before'), block('disk2-before')];

      beforeAll(async () => {
        server = await fx.createServer([{ sizeBytes: unit }, { sizeBytes: unit }, { sizeBytes: 2 * unit }], 'running');
        if (fx.writeDisk) for (const [i, d] of server.disks.entries()) await fx.writeDisk(d.volumeId, BLOCK, before[i]!);
        group = await provider.snapshotDisks(projectId, server.serverId, server.disks.map((d) => d.volumeId));
      });

      it('gives one snapshot per disk, in the order asked, and says how it was taken', () => {
        expect(group.disks.map((d) => d.volumeId)).toEqual(server.disks.map((d) => d.volumeId));
        expect(new Set(group.disks.map((d) => d.snapshotId)).size).toBe(3);
        for (const d of group.disks) expect(d.snapshotId).toBeTruthy();
        expect(['clone', 'freeze-copy', 'copy', 'ebs']).toContain(group.method);
        // A running server with no way to hold its writers is captured disk after disk (a copy, or clones one
        // after another) and must say it is not crash-consistent; held writers and EBS's multi-volume snapshot are.
        if (group.method === 'freeze-copy' || group.method === 'ebs') expect(group.crashConsistent).toBe(true);
        if (group.method === 'copy') expect(group.crashConsistent).toBe(false);
        expect(typeof group.crashConsistent).toBe('boolean');
        expect(group.freezeMs).toBeGreaterThanOrEqual(0);
      });

      it('reads each disk as it was at the snapshot, after the live disks changed', async () => {
        if (!fx.writeDisk) {
          // No live data to capture here (EBS on the emulator): the snapshots exist and can be released.
          await provider.releaseSnapshots(projectId, group.disks.map((d) => d.snapshotId));
          return;
        }
        for (const d of server.disks) await fx.writeDisk(d.volumeId, BLOCK, block('after'));
        for (const [i, d] of group.disks.entries()) {
          const reader = await open(d.volumeId, { snapshotId: d.snapshotId });
          expect(reader.sizeBytes).toBe(server.disks[i]!.sizeBytes);
          expect((await readAt(reader, BLOCK, BLOCK)).equals(before[i]!)).toBe(true);
          expect((await readAt(reader, 0, BLOCK)).equals(Buffer.alloc(BLOCK))).toBe(true);
          await reader.close();
        }
        await provider.releaseSnapshots(projectId, group.disks.map((d) => d.snapshotId));
      });

      it('snapshots a subset of the disks, in the order asked; refuses a disk the server does not have', async () => {
        const ids = [server.disks[2]!.volumeId, server.disks[0]!.volumeId];
        const sub = await provider.snapshotDisks(projectId, server.serverId, ids);
        expect(sub.disks.map((d) => d.volumeId)).toEqual(ids);
        await provider.releaseSnapshots(projectId, sub.disks.map((d) => d.snapshotId));
        const other = await fx.createServer([{ sizeBytes: unit }], 'running');
        await expect(provider.snapshotDisks(projectId, server.serverId, [other.disks[0]!.volumeId])).rejects.toThrow();
        await expect(provider.snapshotDisks(projectId, `no-such-server-${randomBytes(4).toString('hex')}`, ids)).rejects.toBeInstanceOf(ServerNotFoundError);
      });
    });

    describe('blocks of a snapshot', () => {
      let server: CreatedServer;
      let volumeId: string;
      let size: number;
      let first: string;
      const v1 = new Map<number, Buffer>([
        [0, block('b0')],
        [1, block('b1')],
        [2, block('b2')],
        [5, block('b5')],
      ]);
      const blocksOf = (m: Map<number, Buffer>) => [...m].map(([index, data]) => ({ index, data }));

      beforeAll(async () => {
        server = await fx.createServer([{ sizeBytes: unit }], 'running');
        volumeId = server.disks[0]!.volumeId;
        size = server.disks[0]!.sizeBytes;
        first = await snapshotHolding(server.serverId, volumeId, blocksOf(v1));
      });

      it('lists only the written blocks, clipped to the range asked', async () => {
        const reader = await open(volumeId, { snapshotId: first });
        expect(reader.sizeBytes).toBe(size);
        expect(reader.writtenRanges).toBeDefined();
        const all = await reader.writtenRanges!(0, size);
        expectAscendingDisjoint(all);
        expect(mergeRanges(all)).toEqual(blockRanges([...v1.keys()]));
        const part = await reader.writtenRanges!(BLOCK + 1000, 3 * BLOCK);
        expectAscendingDisjoint(part);
        expect(mergeRanges(part)).toEqual([{ offset: BLOCK + 1000, length: 2 * BLOCK - 1000 }]);
        expect(await reader.writtenRanges!(3 * BLOCK, 2 * BLOCK)).toEqual([]);
      });

      it('reads the written blocks, zeros elsewhere, unaligned reads and a short read at the end', async () => {
        const reader = await open(volumeId, { snapshotId: first });
        for (const [i, data] of v1) expect((await readAt(reader, i * BLOCK, BLOCK)).equals(data), `block ${i}`).toBe(true);
        // three blocks in one read: 0, 1, 2
        expect((await readAt(reader, 0, 3 * BLOCK)).equals(Buffer.concat([v1.get(0)!, v1.get(1)!, v1.get(2)!]))).toBe(true);
        // across a written and an unwritten block
        const across = await readAt(reader, 2 * BLOCK + 100, BLOCK);
        expect(across.equals(Buffer.concat([v1.get(2)!.subarray(100), Buffer.alloc(100)]))).toBe(true);
        expect((await readAt(reader, 3 * BLOCK, 2 * BLOCK)).equals(Buffer.alloc(2 * BLOCK))).toBe(true);
        const tail = await readAt(reader, size - 1000, 4000);
        expect(tail.length).toBe(1000);
        expect(tail.equals(Buffer.alloc(1000))).toBe(true);
        expect((await readAt(reader, size, 100)).length).toBe(0);
      });

      it('tells which blocks changed since an earlier snapshot of the same disk', async () => {
        const v2 = new Map(v1);
        v2.set(1, block('b1-changed'));
        v2.set(5, block('b5-changed'));
        v2.set(7, block('b7-new'));
        const second = await snapshotHolding(server.serverId, volumeId, blocksOf(v2), first);
        const reader = await open(volumeId, { snapshotId: second, sinceSnapshotId: first });
        const changed = reader.changedRanges ? await reader.changedRanges(0, size) : undefined;
        if (fx.changedBlocks === 'none') {
          expect(changed).toBeUndefined();
        } else {
          expect(changed).toBeDefined();
          expectAscendingDisjoint(changed!);
          const expected = fx.changedBlocks === 'all' ? [1, 5, 7] : [1, 5];
          expect(mergeRanges(changed!)).toEqual(blockRanges(expected));
          // clipped to the range asked
          expect(mergeRanges((await reader.changedRanges!(BLOCK / 2, 2 * BLOCK))!)).toEqual([{ offset: BLOCK, length: BLOCK }]);
        }
        // the second snapshot reads as the disk's new content, whatever the provider can tell
        expect(mergeRanges(await reader.writtenRanges!(0, size))).toEqual(blockRanges([...v2.keys()]));
        for (const [i, data] of v2) expect((await readAt(reader, i * BLOCK, BLOCK)).equals(data), `block ${i}`).toBe(true);
        await provider.releaseSnapshots(projectId, [second]);
      });

      it('releases snapshots idempotently; a released snapshot cannot be read', async () => {
        const snap = await snapshotHolding(server.serverId, volumeId, [{ index: 0, data: block('to-release') }]);
        await provider.releaseSnapshots(projectId, [snap]);
        await provider.releaseSnapshots(projectId, [snap]);
        await provider.releaseSnapshots(projectId, [`snap-unknown-${randomBytes(4).toString('hex')}`]);
        await expect(
          (async () => {
            const reader = await open(volumeId, { snapshotId: snap });
            await readAt(reader, 0, BLOCK);
          })(),
        ).rejects.toThrow();
      });

      it('refuses a snapshot of another disk or another project', async () => {
        const other = await fx.createServer([{ sizeBytes: unit }], 'running');
        await expect(open(other.disks[0]!.volumeId, { snapshotId: first }).then((r) => readAt(r, 0, BLOCK))).rejects.toThrow();
        await expect(provider.openReader(`other-${randomBytes(4).toString('hex')}`, volumeId, { snapshotId: first }).then((r) => readAt(r, 0, BLOCK))).rejects.toThrow();
      });
    });

    describe('restore', () => {
      it('writes a disk of a stopped server through openWriter; the server keeps its disks', async () => {
        const server = await fx.createServer([{ sizeBytes: unit }, { sizeBytes: unit }], 'stopped');
        const target = server.disks[1]!;
        const before = await provider.describeServer(projectId, server.serverId);
        const writer = await provider.openWriter(projectId, target.volumeId, target.sizeBytes);
        expect(writer.sizeBytes).toBeGreaterThanOrEqual(target.sizeBytes);
        const a = block('restored-a');
        const b = block('restored-b');
        const c = block('restored-c');
        try {
          await writer.write(a, 0);
          // a block written in two pieces, out of order
          await writer.write(b.subarray(BLOCK / 2), 3 * BLOCK + BLOCK / 2);
          await writer.write(b.subarray(0, BLOCK / 2), 3 * BLOCK);
          // two blocks in one write, then the last block of the disk
          await writer.write(Buffer.concat([c, a]), 5 * BLOCK);
          await writer.write(c, target.sizeBytes - BLOCK);
          await writer.flush();
        } finally {
          await writer.close();
        }
        const after = await provider.describeServer(projectId, server.serverId);
        expect(after.disks.map((d) => d.device).sort()).toEqual(before.disks.map((d) => d.device).sort());
        expect(after.disks.map((d) => d.sizeBytes).sort()).toEqual(before.disks.map((d) => d.sizeBytes).sort());
        const restored = await fx.restoredSource(server.serverId, target.volumeId);
        const device = before.disks.find((d) => d.volumeId === target.volumeId)!.device;
        expect(after.disks.find((d) => d.device === device)!.volumeId).toBe(restored.volumeId);
        const reader = await open(restored.volumeId, restored.source);
        expect(reader.sizeBytes).toBe(target.sizeBytes);
        expect((await readAt(reader, 0, BLOCK)).equals(a)).toBe(true);
        expect((await readAt(reader, 3 * BLOCK, BLOCK)).equals(b)).toBe(true);
        expect((await readAt(reader, 5 * BLOCK, 2 * BLOCK)).equals(Buffer.concat([c, a]))).toBe(true);
        expect((await readAt(reader, target.sizeBytes - BLOCK, BLOCK)).equals(c)).toBe(true);
        if (writer.zeroed) expect((await readAt(reader, BLOCK, 2 * BLOCK)).equals(Buffer.alloc(2 * BLOCK))).toBe(true);
      });
    });
  });
}

// The ebs VolumeProvider on the run's emulator (moto: EC2 and the EBS direct APIs): the VolumeProvider
// contract, an incremental backup through the engine that reads only the changed blocks, and a restore
// through PutSnapshotBlock.
//
// What moto (5.2.5) lacks, and how the tests live with it:
// - Snapshots taken with EC2 CreateSnapshot(s) hold no blocks (moto's EBS API knows only snapshots made with
//   StartSnapshot, and answers 500 for the others), and live volumes hold no data. The suite therefore seeds
//   the snapshots it reads with StartSnapshot / PutSnapshotBlock / CompleteSnapshot (fixture.seedSnapshot)
//   and checks group snapshots by their shape and release only.
// - StartSnapshot ignores ParentSnapshotId (a child inherits nothing), Encrypted, KmsKeyArn and Timeout:
//   a seeded child snapshot is given the disk's whole content.
// - ListChangedBlocks lists only blocks the first snapshot holds (changed or gone in the second), never blocks
//   new in the second: the fixture declares `changedBlocks: 'rewritten'`, and the incremental below rewrites
//   blocks rather than adding new ones. On EBS a new block is listed as well.
// - ListSnapshotBlocks and ListChangedBlocks ignore StartingBlockIndex, MaxResults and NextToken (one page of
//   everything), and answer BlockSize 512 rather than 524288; GetSnapshotBlock does not check BlockToken.
// - PutSnapshotBlock does not verify the checksum: it hands back whatever was sent, which the checksum test
//   below uses to store a block whose checksum is wrong.
// - DeleteSnapshot leaves the blocks readable through the EBS API (the provider checks EC2 first, as on AWS).
// - CreateSnapshots ignores InstanceSpecification.ExcludeDataVolumeIds (the provider deletes the extra ones).
import { createHash, randomBytes } from 'node:crypto';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeVolumesCommand, RunInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import type { BlockDeviceMapping, EC2Client } from '@aws-sdk/client-ec2';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import { createVolumeClients } from '../../lib/aws/volume-clients.ts';
import { EbsChecksumError } from '../../lib/aws/ebs-blocks.ts';
import { EbsVolumeProvider, PROJECT_TAG, REPLACED_BY_TAG, SnapshotNotFoundError, VOLUME_TAG } from '../../lib/aws/ebs-provider.ts';
import { backupSegment, commitBackup, prepareBackup } from '../../lib/engine/backup.ts';
import { EngineStateError } from '../../lib/engine/errors.ts';
import type { ServerStatus } from '../../lib/engine/ports.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import { createEngineDeps } from '../../lib/wiring/engine.ts';
import { openVolumeProvider, volumeProviderKind } from '../../lib/wiring/volumes.ts';
import { createRuntimeEnv } from '../support/runtime-env.ts';
import type { RuntimeEnv } from '../support/runtime-env.ts';
import { BLOCK, volumeProviderContract } from '../support/volume-provider-contract.ts';
import type { CreatedServer } from '../support/volume-provider-contract.ts';
import { countEbsCalls } from '../support/ebs-calls.ts';

const GIB = 1024 ** 3;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

/** Makes instances and seeded snapshots of one project on the emulator. */
class EbsWorld {
  readonly projectId = `p${randomBytes(5).toString('hex')}`;
  readonly clients = createClients();
  readonly volumeClients = createVolumeClients();
  private image?: { id: string; root: string };
  private keyArn?: string;

  readonly ec2: EC2Client;
  readonly ebs: EBSClient;

  constructor(ec2?: EC2Client, ebs?: EBSClient) {
    this.ec2 = ec2 ?? this.volumeClients.ec2;
    this.ebs = ebs ?? this.volumeClients.ebs;
  }

  async createServer(disks: Array<{ sizeBytes: number; encrypted?: boolean }>, status: ServerStatus): Promise<CreatedServer> {
    if (!this.image) {
      const img = (await this.ec2.send(new DescribeImagesCommand({}))).Images!.find((i) => i.RootDeviceName)!;
      this.image = { id: img.ImageId!, root: img.RootDeviceName! };
    }
    if (!this.keyArn && disks.some((d) => d.encrypted)) this.keyArn = (await this.clients.kms.send(new CreateKeyCommand({ Description: 'ebs contract' }))).KeyMetadata!.Arn!;
    const devices = disks.map((_, i) => (i === 0 ? this.image!.root : `/dev/sd${String.fromCharCode(102 + i)}`));
    const mappings: BlockDeviceMapping[] = disks.map((d, i) => ({
      DeviceName: devices[i],
      Ebs: { VolumeSize: d.sizeBytes / GIB, ...(d.encrypted ? { Encrypted: true, KmsKeyId: this.keyArn } : {}) },
    }));
    const run = await this.ec2.send(
      new RunInstancesCommand({
        ImageId: this.image.id,
        MinCount: 1,
        MaxCount: 1,
        Placement: { AvailabilityZone: 'us-east-1a' },
        BlockDeviceMappings: mappings,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: PROJECT_TAG, Value: this.projectId }, { Key: 'Name', Value: 'contract server' }] }],
      }),
    );
    const serverId = run.Instances![0]!.InstanceId!;
    if (status === 'stopped') await this.ec2.send(new StopInstancesCommand({ InstanceIds: [serverId] }));
    const instance = (await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [serverId] }))).Reservations![0]!.Instances![0]!;
    const byDevice = new Map(instance.BlockDeviceMappings!.map((m) => [m.DeviceName!, m.Ebs!.VolumeId!]));
    return {
      serverId,
      disks: disks.map((d, i) => ({ volumeId: byDevice.get(devices[i]!)!, sizeBytes: d.sizeBytes, ...(d.encrypted ? { kmsKeyId: this.keyArn! } : {}) })),
    };
  }

  async volumeSizeGiB(volumeId: string): Promise<number> {
    return (await this.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!.Size!;
  }

  /** A completed snapshot of `volumeId` with exactly these blocks (moto ignores the parent: pass the whole content). */
  async seedSnapshot(volumeId: string, blocks: Array<{ index: number; data: Buffer; checksum?: string }>, parentSnapshotId?: string): Promise<string> {
    const start = await this.ebs.send(
      new StartSnapshotCommand({
        VolumeSize: await this.volumeSizeGiB(volumeId),
        ...(parentSnapshotId ? { ParentSnapshotId: parentSnapshotId } : {}),
        Tags: [
          { Key: PROJECT_TAG, Value: this.projectId },
          { Key: VOLUME_TAG, Value: volumeId },
        ],
      }),
    );
    for (const b of blocks) {
      await this.ebs.send(
        new PutSnapshotBlockCommand({ SnapshotId: start.SnapshotId, BlockIndex: b.index, BlockData: b.data, DataLength: b.data.length, Checksum: b.checksum ?? sha256(b.data), ChecksumAlgorithm: 'SHA256' }),
      );
    }
    await this.ebs.send(new CompleteSnapshotCommand({ SnapshotId: start.SnapshotId, ChangedBlocksCount: blocks.length }));
    return start.SnapshotId!;
  }

  /** The volume that replaced `volumeId` in a restore, and the snapshot it was made from. */
  async replacement(volumeId: string): Promise<{ volumeId: string; snapshotId: string }> {
    const old = (await this.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!;
    const newId = old.Tags?.find((t) => t.Key === REPLACED_BY_TAG)?.Value;
    if (!newId) throw new Error(`volume ${volumeId} was not replaced`);
    const made = (await this.ec2.send(new DescribeVolumesCommand({ VolumeIds: [newId] }))).Volumes![0]!;
    return { volumeId: newId, snapshotId: made.SnapshotId! };
  }
}

volumeProviderContract('ebs (moto)', async () => {
  const world = new EbsWorld();
  return {
    provider: new EbsVolumeProvider(world.ec2, world.ebs, { keepRestoreSnapshots: true, waitSeconds: 60 }),
    projectId: world.projectId,
    sizeUnitBytes: GIB,
    changedBlocks: 'rewritten',
    createServer: (disks, status) => world.createServer(disks, status),
    seedSnapshot: (volumeId, blocks, parent) => world.seedSnapshot(volumeId, blocks, parent),
    async restoredSource(_serverId, volumeId) {
      const r = await world.replacement(volumeId);
      return { volumeId: r.volumeId, source: { snapshotId: r.snapshotId } };
    },
    async close() {},
  };
});


describe('ebs provider: engine backups and restores on EBS snapshots', () => {
  let env: RuntimeEnv;
  let world: EbsWorld;
  let provider: EbsVolumeProvider;
  let calls: ReturnType<typeof countEbsCalls>;
  const take = (name: string) => calls.take(name);

  beforeAll(async () => {
    env = await createRuntimeEnv('aws');
    const { ec2, ebs } = createVolumeClients();
    // Every block is fetched with the token its listing gave.
    calls = countEbsCalls(ebs, (name, input) => {
      if (name === 'GetSnapshotBlockCommand') expect((input as { BlockToken?: string }).BlockToken).toBeTruthy();
    });
    world = new EbsWorld(ec2, ebs);
    provider = new EbsVolumeProvider(world.ec2, ebs, { keepRestoreSnapshots: true, waitSeconds: 60 });
  });
  afterAll(() => env?.close());

  const engine = () => createEngineDeps({ backend: env.backend, backups: env.stores.backups, volumes: provider });

  /** A backup of `volumeId` reading `snapshotId` (what the server backup workflow does), blocks one extent each. */
  async function backupFrom(volumeId: string, snapshotId: string) {
    const deps = engine();
    const rec = await prepareBackup(deps, { projectId: world.projectId, volumeId, name: 'ebs', extentBlocks: 1 });
    await deps.catalog.updateBackup(world.projectId, rec.backupId, { sourceSnapshotId: snapshotId }, ['creating']);
    for (let s = 0; s < rec.segmentCount; s++) await backupSegment(deps, world.projectId, rec.backupId, s);
    return commitBackup(deps, world.projectId, rec.backupId);
  }

  it('an incremental reads only the changed blocks (GetSnapshotBlock counted); a restore writes through PutSnapshotBlock', async () => {
    const server = await world.createServer([{ sizeBytes: 2 * GIB }], 'running');
    const volumeId = server.disks[0]!.volumeId;
    const content = new Map<number, Buffer>([0, 1, 2, 700, 2049, 4095].map((i) => [i, randomBytes(BLOCK)]));
    const blocks = () => [...content].map(([index, data]) => ({ index, data }));

    const first = await world.seedSnapshot(volumeId, blocks());
    take('GetSnapshotBlockCommand');
    const full = await backupFrom(volumeId, first);
    expect(full.parentId).toBeUndefined();
    expect(take('GetSnapshotBlockCommand')).toBe(6);
    expect(full.stats!.chunkCount).toBe(6);

    // Two blocks rewritten (one per GiB segment); the rest as before.
    content.set(1, randomBytes(BLOCK));
    content.set(2049, randomBytes(BLOCK));
    const second = await world.seedSnapshot(volumeId, blocks(), first);
    const incremental = await backupFrom(volumeId, second);
    expect(incremental.parentId).toBe(full.backupId);
    expect(take('GetSnapshotBlockCommand')).toBe(2);
    expect(incremental.stats!.reusedFromParent).toBe(4);
    expect(incremental.stats!.chunkCount).toBe(6);
    expect(take('ListChangedBlocksCommand')).toBeGreaterThan(0);

    // Restore the incremental over the disk of a stopped server: a new snapshot of exactly the non-zero blocks.
    const target = await world.createServer([{ sizeBytes: 2 * GIB }], 'stopped');
    take('PutSnapshotBlockCommand');
    await restoreBackup(engine(), { projectId: world.projectId, backupId: incremental.backupId, targetVolumeId: target.disks[0]!.volumeId });
    expect(take('PutSnapshotBlockCommand')).toBe(6);
    const made = await world.replacement(target.disks[0]!.volumeId);
    const server2 = await provider.describeServer(world.projectId, target.serverId);
    expect(server2.disks.map((d) => d.volumeId)).toEqual([made.volumeId]);
    const reader = await provider.openReader(world.projectId, made.volumeId, { snapshotId: made.snapshotId });
    expect(await reader.writtenRanges!(0, reader.sizeBytes)).toHaveLength(4); // 0-2 merge into one range; 700, 2049, 4095
    for (const [i, data] of content) {
      const got = Buffer.alloc(BLOCK);
      await reader.read(got, i * BLOCK);
      expect(got.equals(data), `block ${i}`).toBe(true);
    }
    await reader.close();
  });

  it('fails on a block whose data does not match its checksum, after retrying', async () => {
    const server = await world.createServer([{ sizeBytes: GIB }], 'running');
    const volumeId = server.disks[0]!.volumeId;
    const data = randomBytes(BLOCK);
    const snap = await world.seedSnapshot(volumeId, [{ index: 3, data, checksum: sha256(randomBytes(16)) }]);
    const reader = await provider.openReader(world.projectId, volumeId, { snapshotId: snap });
    take('GetSnapshotBlockCommand');
    await expect(reader.read(Buffer.alloc(BLOCK), 3 * BLOCK)).rejects.toBeInstanceOf(EbsChecksumError);
    expect(take('GetSnapshotBlockCommand')).toBeGreaterThan(1);
  });

  it('reads a volume only through a snapshot, and restores in place only on a stopped server', async () => {
    const server = await world.createServer([{ sizeBytes: GIB }], 'running');
    const volumeId = server.disks[0]!.volumeId;
    await expect(provider.openReader(world.projectId, volumeId)).rejects.toBeInstanceOf(EngineStateError);
    await expect(provider.openReader(world.projectId, volumeId, { snapshotId: 'snap-0123456789abcdef0' })).rejects.toBeInstanceOf(SnapshotNotFoundError);
    take('StartSnapshotCommand');
    await expect(provider.openWriter(world.projectId, volumeId, GIB)).rejects.toThrow(/stop it before restoring/);
    expect(take('StartSnapshotCommand')).toBe(0); // refused before anything was written
  });

  it('snapshots one volume for a volume backup, and refuses another project', async () => {
    const server = await world.createServer([{ sizeBytes: GIB }], 'running');
    const volumeId = server.disks[0]!.volumeId;
    const snap = await provider.snapshotVolume(world.projectId, volumeId);
    expect(snap).toMatch(/^snap-/);
    await provider.releaseSnapshots(world.projectId, [snap]);
    await expect(provider.snapshotVolume('someone-else', volumeId)).rejects.toThrow(/not found/);
  });
});

describe('the provider a deployment chooses (OPENVBS_VOLUME_PROVIDER)', () => {
  it('is file by default, ebs when asked, and refuses anything else', async () => {
    expect(volumeProviderKind({})).toBe('file');
    expect(volumeProviderKind({ OPENVBS_VOLUME_PROVIDER: 'ebs' })).toBe('ebs');
    expect(() => volumeProviderKind({ OPENVBS_VOLUME_PROVIDER: 'nfs' })).toThrow(/file, ebs/);
    const local = { keepsSnapshots: false } as unknown as EbsVolumeProvider;
    expect(await openVolumeProvider({ local: () => local }, 'file')).toBe(local);
    const ebs = await openVolumeProvider({ local: () => local, clients: createVolumeClients() }, 'ebs');
    expect(ebs).toBeInstanceOf(EbsVolumeProvider);
    expect(ebs.keepsSnapshots).toBe(true);
  });
});

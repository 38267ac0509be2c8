// The AWS deployment's volume backups, server backups and restores of EBS volumes, through the real services and
// workflow steps (run as the state machines run them) on the AWS backend and the `ebs` provider, on the emulator.
//
// What the emulator (moto 5.2.5) forced (see also the header of test/contract/volume-provider-ebs.test.ts):
// - EC2 CreateSnapshot / CreateSnapshots make snapshots that hold no blocks (moto's EBS direct API answers 500
//   for them), and live volumes hold no data. So the one seam substituted is the snapshot step: SeededEbsProvider
//   (an EbsVolumeProvider) answers snapshotVolume / snapshotDisks with snapshots the test seeded beforehand through
//   StartSnapshot / PutSnapshotBlock / CompleteSnapshot, tagged as the provider tags its own. Everything else
//   (describe, adoption, ListSnapshotBlocks / ListChangedBlocks / GetSnapshotBlock reads, the restore's
//   StartSnapshot / PutSnapshotBlock / CompleteSnapshot, CreateVolume, the swap, DeleteSnapshot) is the provider's
//   own code against moto.
// - StartSnapshot ignores ParentSnapshotId: each seeded snapshot is given the disk's whole content.
// - ListChangedBlocks lists only blocks the first snapshot holds, never new ones: the incrementals rewrite blocks.
// - Restored volumes hold no data on moto either: the data a restore wrote is read back from the snapshot the new
//   volume was made of (the provider keeps it here: keepRestoreSnapshots).
import { createHash, randomBytes } from 'node:crypto';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { CreateVolumeCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolumeClients } from '../../lib/aws/volume-clients.ts';
import { EbsVolumeProvider, PROJECT_TAG, VOLUME_TAG } from '../../lib/aws/ebs-provider.ts';
import type { GroupSnapshot } from '../../lib/engine/ports.ts';
import { createServices } from '../../lib/service/factory.ts';
import type { Services } from '../../lib/service/factory.ts';
import { ServerBackupInput, ServerRestoreInput, VolumeBackupInput, VolumeRestoreInput } from '../../lib/workflows/contracts.ts';
import type { DiskTask } from '../../lib/workflows/contracts.ts';
import { deleteBackupStep } from '../../lib/workflows/steps/backup-delete.ts';
import type { TaskDeps } from '../../lib/workflows/steps/deps.ts';
import { serverBackupCommit, serverBackupPrepare } from '../../lib/workflows/steps/server-backup.ts';
import { serverRestoreCommit, serverRestorePrepare } from '../../lib/workflows/steps/server-restore.ts';
import { backupCommit, backupPrepare, backupSegmentStep } from '../../lib/workflows/steps/volume-backup.ts';
import { RESTORED_VOLUME_ENTITY, restoreCommit, restoreFail, restorePrepare, restoreSegmentStep } from '../../lib/workflows/steps/volume-restore.ts';
import { createRuntimeEnv } from '../support/runtime-env.ts';
import type { RuntimeEnv } from '../support/runtime-env.ts';
import { RecordingStarter } from '../service/service-env.ts';
import { countEbsCalls } from '../support/ebs-calls.ts';

const GIB = 1024 ** 3;
const BLOCK = 512 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

/** The ebs provider with the snapshot step answered by seeded snapshots (moto's own snapshots hold no data). */
class SeededEbsProvider extends EbsVolumeProvider {
  /** Per volume, the snapshots the next snapshotVolume / snapshotDisks calls hand out, in order. */
  readonly seeded = new Map<string, string[]>();
  /** What each finishRestore was told: the snapshot and its count of written blocks. */
  readonly finished: Array<{ snapshotId: string; changedBlocks: number }> = [];

  private next(volumeId: string): string {
    const snap = this.seeded.get(volumeId)?.shift();
    if (!snap) throw new Error(`no seeded snapshot left for ${volumeId}`);
    return snap;
  }

  override async snapshotVolume(projectId: string, volumeId: string): Promise<string> {
    await this.describe(projectId, volumeId); // the ownership check the real one makes
    return this.next(volumeId);
  }

  override async snapshotDisks(projectId: string, serverId: string, volumeIds: string[]): Promise<GroupSnapshot> {
    const server = await this.describeServer(projectId, serverId);
    for (const id of volumeIds) if (!server.disks.some((d) => d.volumeId === id)) throw new Error(`${id} is not a disk of ${serverId}`);
    return { disks: volumeIds.map((volumeId) => ({ volumeId, snapshotId: this.next(volumeId) })), crashConsistent: true, method: 'ebs', freezeMs: 0 };
  }

  override async finishRestore(projectId: string, volumeId: string, snapshotId: string, changedBlocks: number) {
    this.finished.push({ snapshotId, changedBlocks });
    return super.finishRestore(projectId, volumeId, snapshotId, changedBlocks);
  }
}


describe('EBS volumes and servers through the workflows (aws backend, ebs provider, emulator)', () => {
  const projectId = `p${randomBytes(5).toString('hex')}`;
  let env: RuntimeEnv;
  let deps: TaskDeps;
  let services: Services;
  let workflows: RecordingStarter;
  let provider: SeededEbsProvider;
  let ec2: EC2Client;
  let ebs: EBSClient;
  let calls: ReturnType<typeof countEbsCalls>;
  const take = (name: string) => calls.take(name);

  beforeAll(async () => {
    ({ ec2, ebs } = createVolumeClients());
    calls = countEbsCalls(ebs);
    provider = new SeededEbsProvider(ec2, ebs, { keepRestoreSnapshots: true, waitSeconds: 60 });
    // Two segments per GiB: each volume's backup and restore is split over segment tasks.
    env = await createRuntimeEnv('aws', { workers: 1, provider, engine: { segmentBlocks: 1024 } });
    deps = env.runtime.taskDeps();
    workflows = new RecordingStarter();
    services = createServices({ stores: env.stores, keys: env.backend.keys, workflows, provider, restoreNeedsStoppedServer: false, dataDir: env.path('data'), allowPathRegistration: false });
  });
  afterAll(() => env?.close());

  /** A detached volume of the project (tagged). */
  async function createVolume(gib: number): Promise<string> {
    const v = await ec2.send(
      new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: gib, TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: PROJECT_TAG, Value: projectId }, { Key: 'Name', Value: 'data' }] }] }),
    );
    return v.VolumeId!;
  }

  /** A running instance of the project with disks of these sizes; its volume ids in device order. */
  async function createServer(gibs: number[]): Promise<{ serverId: string; volumeIds: string[] }> {
    const img = (await ec2.send(new DescribeImagesCommand({}))).Images!.find((i) => i.RootDeviceName)!;
    const devices = gibs.map((_, i) => (i === 0 ? img.RootDeviceName! : `/dev/sd${String.fromCharCode(102 + i)}`));
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: img.ImageId!,
        MinCount: 1,
        MaxCount: 1,
        Placement: { AvailabilityZone: 'us-east-1a' },
        BlockDeviceMappings: gibs.map((gib, i) => ({ DeviceName: devices[i], Ebs: { VolumeSize: gib } })),
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: PROJECT_TAG, Value: projectId }] }],
      }),
    );
    const serverId = run.Instances![0]!.InstanceId!;
    return { serverId, volumeIds: await diskIds(serverId, devices) };
  }

  async function diskIds(serverId: string, devices?: string[]): Promise<string[]> {
    const instance = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [serverId] }))).Reservations![0]!.Instances![0]!;
    const mappings = instance.BlockDeviceMappings!;
    return (devices ?? mappings.map((m) => m.DeviceName!)).map((d) => mappings.find((m) => m.DeviceName === d)!.Ebs!.VolumeId!);
  }

  /** A completed snapshot of `volumeId` holding exactly `content` (what the snapshot step hands out next). */
  async function seed(volumeId: string, content: Map<number, Buffer>): Promise<string> {
    const size = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!.Size!;
    const start = await ebs.send(new StartSnapshotCommand({ VolumeSize: size, Tags: [{ Key: PROJECT_TAG, Value: projectId }, { Key: VOLUME_TAG, Value: volumeId }] }));
    for (const [index, data] of content) {
      await ebs.send(new PutSnapshotBlockCommand({ SnapshotId: start.SnapshotId, BlockIndex: index, BlockData: data, DataLength: data.length, Checksum: sha256(data), ChecksumAlgorithm: 'SHA256' }));
    }
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: start.SnapshotId, ChangedBlocksCount: content.size }));
    provider.seeded.set(volumeId, [...(provider.seeded.get(volumeId) ?? []), start.SnapshotId!]);
    return start.SnapshotId!;
  }

  const snapshotExists = async (snapshotId: string) => ((await ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'snapshot-id', Values: [snapshotId] }] }))).Snapshots ?? []).length > 0;

  /** The content the restore wrote onto the volume it made (read from the snapshot that volume was made of). */
  async function expectContent(volumeId: string, content: Map<number, Buffer>) {
    const made = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!;
    const reader = await provider.openReader(projectId, volumeId, { snapshotId: made.SnapshotId! });
    const written = await reader.writtenRanges!(0, reader.sizeBytes);
    expect(written.reduce((n, r) => n + r.length, 0)).toBe(content.size * BLOCK);
    for (const [i, data] of content) {
      const got = Buffer.alloc(BLOCK);
      await reader.read(got, i * BLOCK);
      expect(got.equals(data), `block ${i} of ${volumeId}`).toBe(true);
    }
    await reader.close();
  }

  /** A volume backup, run as the volume-backup state machine runs it. */
  async function runBackup(volumeId: string) {
    const { jobId, backupId } = await services.backups.create(projectId, { volumeId, name: 'ebs' });
    const input = VolumeBackupInput.parse(workflows.last().input);
    const work = await backupPrepare(deps, input);
    for (const segment of work.segments) await backupSegmentStep(deps, { ...input, segment });
    await backupCommit(deps, input);
    expect((await env.stores.jobs.get(projectId, jobId))!.status).toBe('SUCCESS');
    return (await env.stores.backups.getBackup(projectId, backupId))!;
  }

  /** The segments and commit of one volume restore (or one disk of a server restore). */
  async function runRestoreSteps(input: VolumeRestoreInput) {
    const work = await restorePrepare(deps, input);
    expect(work.segments.length).toBeGreaterThan(1);
    for (const segment of work.segments) {
      await restoreSegmentStep(deps, { ...input, segment });
      if (segment === 0) await restoreSegmentStep(deps, { ...input, segment }); // retried: counted once
    }
    return restoreCommit(deps, input);
  }

  it('backs up an EBS volume from its snapshot, reads only changed blocks in the incremental, and restores into one new snapshot', async () => {
    const volumeId = await createVolume(1);
    // Blocks in different extents (the engine reads and stores whole extents of 8 blocks where one changed).
    const content = new Map<number, Buffer>([0, 9, 40, 1500, 2047].map((i) => [i, randomBytes(BLOCK)]));

    // The catalog records the volume on first use: external, no path, as EC2 describes it.
    const first = await seed(volumeId, content);
    take('GetSnapshotBlockCommand');
    const full = await runBackup(volumeId);
    expect(full).toMatchObject({ status: 'available', sourceSnapshotId: first, sizeBytes: GIB });
    expect(full.parentId).toBeUndefined();
    expect(take('GetSnapshotBlockCommand')).toBe(5);
    expect(await env.stores.volumes.get(projectId, volumeId)).toMatchObject({ external: true, managed: false, path: '', sizeBytes: GIB, name: 'data', status: 'available' });

    // Two blocks rewritten, one in each segment: the incremental reads those two and keeps the new snapshot as
    // the next base, releasing the first.
    content.set(9, randomBytes(BLOCK));
    content.set(1500, randomBytes(BLOCK));
    const second = await seed(volumeId, content);
    const incremental = await runBackup(volumeId);
    expect(incremental).toMatchObject({ status: 'available', sourceSnapshotId: second, parentId: full.backupId });
    expect(take('GetSnapshotBlockCommand')).toBe(2);
    expect(take('ListChangedBlocksCommand')).toBeGreaterThan(0);
    expect(incremental.stats).toMatchObject({ chunkCount: 5, reusedFromParent: 3 });
    expect(await snapshotExists(first)).toBe(false);
    expect(await snapshotExists(second)).toBe(true);

    // Restore onto a detached volume: one snapshot for the whole restore, the new volume beside the target.
    const target = await createVolume(1);
    take('StartSnapshotCommand');
    take('PutSnapshotBlockCommand');
    const { jobId } = await services.backups.restore(projectId, incremental.backupId, target);
    const input = VolumeRestoreInput.parse(workflows.last().input);
    const result = await runRestoreSteps(input);
    expect(take('StartSnapshotCommand')).toBe(1);
    expect(take('PutSnapshotBlockCommand')).toBe(5 + 3); // segment 0 (blocks 0, 9, 40) was written twice
    expect(provider.finished.at(-1)!.changedBlocks).toBe(5);
    const made = result.volumeId!;
    expect(made).toMatch(/^vol-/);
    await expectContent(made, content);
    const job = (await env.stores.jobs.get(projectId, jobId))!;
    expect(job.status).toBe('SUCCESS');
    expect(job.entities[RESTORED_VOLUME_ENTITY]).toBe(made);
    expect(await env.stores.volumes.get(projectId, target)).toMatchObject({ status: 'available', restoredTo: made });
    expect((await env.stores.volumes.get(projectId, target))!.restore).toBeUndefined();
    expect(await env.stores.volumes.get(projectId, made)).toMatchObject({ external: true, status: 'available' });
    expect(await env.stores.volumes.restoreBlocks(projectId, target, jobId)).toBe(0); // the counts are cleared

    // A restore that fails before commit deletes its unfinished snapshot and leaves the target as it was.
    await services.backups.restore(projectId, incremental.backupId, target);
    const failing = VolumeRestoreInput.parse(workflows.last().input);
    await restorePrepare(deps, failing);
    const started = (await env.stores.volumes.get(projectId, target))!.restore!;
    expect(started.jobId).toBe(failing.jobId);
    await restoreSegmentStep(deps, { ...failing, segment: 0 });
    await restoreFail(deps, { ...failing, error: { Error: 'States.TaskFailed', Cause: 'injected' } });
    expect(await snapshotExists(started.snapshotId)).toBe(false);
    expect(await env.stores.volumes.get(projectId, target)).toMatchObject({ status: 'available' });
    expect((await env.stores.volumes.get(projectId, target))!.restore).toBeUndefined();

    // Deleting the backup whose snapshot is the kept base releases it; the next backup then reads everything.
    await services.backups.delete(projectId, incremental.backupId);
    await deleteBackupStep(deps, workflows.last().input as never);
    expect(await snapshotExists(second)).toBe(false);
    await seed(volumeId, content);
    take('GetSnapshotBlockCommand');
    const after = await runBackup(volumeId);
    expect(after.parentId).toBe(full.backupId);
    expect(take('GetSnapshotBlockCommand')).toBe(5);
    expect(after.stats).toMatchObject({ chunkCount: 5 });
  });

  it('refuses a volume of another project, as an unknown one', async () => {
    const theirs = await createVolume(1);
    await expect(services.backups.create('someone-else', { volumeId: theirs, name: 'x' })).rejects.toMatchObject({ httpStatus: 404 });
    await expect(services.backups.create(projectId, { volumeId: 'vol-0123456789abcdef0', name: 'x' })).rejects.toMatchObject({ httpStatus: 404 });
    expect(await env.stores.volumes.get('someone-else', theirs)).toBeUndefined();
  });

  it('backs up a 2-disk instance from its group snapshot (incremental reads changed blocks) and restores it in place', async () => {
    const { serverId, volumeIds } = await createServer([1, 1]);
    const contents = volumeIds.map(() => new Map<number, Buffer>([3, 700, 1800].map((i) => [i, randomBytes(BLOCK)])));

    const protect = async () => {
      const checkpoint = await services.serverBackups.protect(projectId, serverId, {});
      const input = ServerBackupInput.parse(workflows.last().input);
      const { disks } = await serverBackupPrepare(deps, input);
      for (const disk of disks) {
        const work = await backupPrepare(deps, disk);
        for (const segment of work.segments) await backupSegmentStep(deps, { ...disk, segment });
        await backupCommit(deps, disk);
      }
      await serverBackupCommit(deps, input);
      return (await env.stores.checkpoints.get(projectId, checkpoint.checkpointId))!;
    };

    const firstSnaps = await Promise.all(volumeIds.map((v, i) => seed(v, contents[i]!)));
    take('GetSnapshotBlockCommand');
    const full = await protect();
    expect(full.status).toBe('available');
    expect(full.disks.map((d) => d.snapshotId)).toEqual(firstSnaps);
    expect(take('GetSnapshotBlockCommand')).toBe(6);
    for (const v of volumeIds) expect(await env.stores.volumes.get(projectId, v)).toMatchObject({ external: true, status: 'in-use', attachedServerId: serverId });

    // One block changed on the second disk only.
    const fullContents = contents.map((c) => new Map(c));
    contents[1]!.set(700, randomBytes(BLOCK));
    await Promise.all(volumeIds.map((v, i) => seed(v, contents[i]!)));
    const incremental = await protect();
    expect(incremental.incremental).toBe(true);
    expect(take('GetSnapshotBlockCommand')).toBe(1);
    for (const s of firstSnaps) expect(await snapshotExists(s)).toBe(false);
    for (const d of incremental.disks) expect(await snapshotExists(d.snapshotId!)).toBe(true);

    // Restore the first server backup in place: the server is stopped, each disk gets a new volume on its device.
    const { jobId } = await services.serverBackups.restore(projectId, { checkpointId: full.checkpointId, powerOn: false });
    const input = ServerRestoreInput.parse(workflows.last().input);
    const { disks } = await serverRestorePrepare(deps, input);
    const made: string[] = [];
    for (const disk of disks as DiskTask[]) made.push((await runRestoreSteps(disk)).volumeId!);
    await serverRestoreCommit(deps, input);
    expect((await env.stores.jobs.get(projectId, jobId))!.status).toBe('SUCCESS');
    expect(await diskIds(serverId)).toEqual(made);
    // Each disk holds the first backup's content (the second disk's block 700 as it was before the change).
    for (const [i, v] of made.entries()) await expectContent(v, fullContents[i]!);
    for (const [i, v] of volumeIds.entries()) {
      expect(await env.stores.volumes.get(projectId, v)).toMatchObject({ status: 'available', restoredTo: made[i] });
      expect((await env.stores.volumes.get(projectId, v))!.attachedServerId).toBeUndefined();
      expect(await env.stores.volumes.get(projectId, made[i]!)).toMatchObject({ status: 'in-use', attachedServerId: serverId });
    }
  });
});

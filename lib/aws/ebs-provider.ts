// The `ebs` VolumeProvider: servers are EC2 instances, disks their EBS volumes, and blocks are read from and
// written to EBS snapshots through the EBS direct APIs (lib/aws/ebs-blocks.ts).
//
// Ownership: an instance, volume or snapshot belongs to project P when it carries the tag
// `openvbs:project=P` (PROJECT_TAG); a volume also belongs to P when it is attached to an instance of P. Nothing
// else is listed, described, snapshotted, read, written, stopped or deleted for P: an unknown id and another
// project's id look the same (not found). Snapshots this provider takes or writes carry the project tag; a
// snapshot is of volume V when its `openvbs:volume` tag (VOLUME_TAG) says V, or, without that tag, when EC2
// records V as its source.
//
// Reads: EBS has no way to read a live volume, so openReader needs `source.snapshotId` (a group snapshot from
// snapshotDisks, or one disk's from snapshotVolume) and refuses otherwise: a reader that took its own
// snapshot would give each segment task of one backup a different instant. A pending snapshot is a
// TransientError (the workflow retries with backoff until EBS completes it).
//
// Restore (openWriter): a new snapshot (StartSnapshot, encrypted under the target volume's key when it has
// one) receives the blocks (PutSnapshotBlock with SHA256 checksums); flush completes it (CompleteSnapshot),
// creates a volume from it (CreateVolume, same zone, type, size, key and tags as the target) and, when the
// target is attached to an instance, swaps it in place: the instance must be stopped (checked before any
// write), the old volume is detached and kept (tagged `openvbs:replaced-by`), the new one attached at the
// same device. A detached target is left as it was; the new volume stands beside it. EBS cannot give the new
// volume the old id: the writer's `result` names it. The writer serves a restore in one process; a restore
// split over several tasks must share one snapshot (see `EbsVolumeProvider.startRestore` / `finishRestore`):
// the restore workflow does so (lib/workflows/steps/volume-restore.ts), and a volume backup reads a snapshot its
// prepare step takes with snapshotVolume (lib/workflows/steps/volume-backup.ts).
//
// describe also names the volume (its `Name` tag) and the instance it is attached to: the catalog records an EBS
// volume on first use from this (VolumeStore.adopt), so locks and statuses work as for local volumes. A disk
// replaced by a restore carries no project tag of its own (unless it had one), so it stops being the project's.
import { randomUUID } from 'node:crypto';
import { CompleteSnapshotCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import type { EBSClient } from '@aws-sdk/client-ebs';
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateSnapshotsCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  ModifyInstanceAttributeCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilSnapshotCompleted,
  waitUntilVolumeAvailable,
  waitUntilVolumeInUse,
} from '@aws-sdk/client-ec2';
import type { EC2Client, Filter, Instance, Snapshot, Tag, Volume, VolumeType } from '@aws-sdk/client-ec2';
import { EngineStateError } from '../engine/errors.ts';
import { ServerNotFoundError } from '../engine/ports.ts';
import type { BlockReader, GroupSnapshot, ReadSource, ServerDisk, ServerInfo, ServerStatus, VolumeInfo, VolumeProvider } from '../engine/ports.ts';
import { chunked } from '../util/concurrency.ts';
import { VolumeNotFoundError } from '../volumes/file-provider.ts';
import { TransientError } from '../workflows/errors.ts';
import { EBS_BLOCK, EbsSnapshotReader, EbsSnapshotWriter } from './ebs-blocks.ts';

/** The tag naming the project an instance, volume or snapshot belongs to. */
export const PROJECT_TAG = 'openvbs:project';
/** On a snapshot: the volume it is a snapshot of (EC2's own VolumeId when absent). */
export const VOLUME_TAG = 'openvbs:volume';
/** On a restored volume: the volume it replaces; on the replaced volume: `openvbs:replaced-by`. */
export const RESTORED_FROM_TAG = 'openvbs:restored-from';
export const REPLACED_BY_TAG = 'openvbs:replaced-by';

const GIB = 1024 ** 3;
/** Instance states listed (terminated and shutting-down instances are gone). */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

export interface EbsProviderOptions {
  /** GetSnapshotBlock calls in flight per reader (default 16). */
  readConcurrency?: number;
  /** PutSnapshotBlock calls in flight per writer (default 16). */
  writeConcurrency?: number;
  /** Longest wait for an instance, volume or snapshot to reach a state, in seconds (default 600). */
  waitSeconds?: number;
  /** Keep the snapshot a restore wrote (default false: deleted once its volume exists). */
  keepRestoreSnapshots?: boolean;
  /**
   * Whether an encrypted volume's key is the customer's (backups go under that key's domain). Default: every
   * key. A deployment whose volumes use the AWS managed key `aws/ebs` should say no for it: only EBS may use it.
   */
  isCustomerKey?: (kmsKeyId: string) => boolean | Promise<boolean>;
}

/** A snapshot that is unknown, released, or not of this project and volume. */
export class SnapshotNotFoundError extends Error {
  override name = 'SnapshotNotFoundError';
}

/** What a restore made. */
export interface EbsRestoreResult {
  /** The snapshot the restore wrote (deleted unless `keepRestoreSnapshots`). */
  snapshotId: string;
  /** The new volume holding the restored data. */
  volumeId: string;
  /** The volume restored over; when it was attached, the new one took its place on `instanceId` at `device`. */
  targetVolumeId: string;
  instanceId?: string;
  device?: string;
}

export type EbsRestoreWriter = EbsSnapshotWriter<EbsRestoreResult | undefined>;

const tagValue = (tags: Tag[] | undefined, key: string) => tags?.find((t) => t.Key === key)?.Value;
const errorName = (err: unknown) => (err as { name?: string } | undefined)?.name ?? '';
const notFound = (err: unknown, kind: string) => errorName(err) === `${kind}.NotFound` || errorName(err) === `${kind}.Malformed`;

function statusOf(state: string | undefined): ServerStatus {
  switch (state) {
    case 'running':
    case 'pending':
      return 'running';
    case 'stopped':
    case 'stopping':
      return 'stopped';
    default:
      return 'error';
  }
}

export class EbsVolumeProvider implements VolumeProvider {
  readonly keepsSnapshots = true;
  private readonly ec2: EC2Client;
  private readonly ebs: EBSClient;
  private readonly options: Required<Omit<EbsProviderOptions, 'isCustomerKey'>> & Pick<EbsProviderOptions, 'isCustomerKey'>;

  constructor(ec2: EC2Client, ebs: EBSClient, options: EbsProviderOptions = {}) {
    this.ec2 = ec2;
    this.ebs = ebs;
    this.options = { readConcurrency: 16, writeConcurrency: 16, waitSeconds: 600, keepRestoreSnapshots: false, ...options };
  }

  private waiter() {
    return { client: this.ec2, maxWaitTime: this.options.waitSeconds, minDelay: 2, maxDelay: 15 };
  }

  // ---- inventory ----

  /** The project's live instances (all, or those of `ids`). */
  private async instances(projectId: string, ids?: string[]): Promise<Instance[]> {
    const filters: Filter[] = [
      { Name: `tag:${PROJECT_TAG}`, Values: [projectId] },
      { Name: 'instance-state-name', Values: LIVE_STATES },
    ];
    const out: Instance[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ec2.send(new DescribeInstancesCommand({ Filters: filters, ...(ids ? { InstanceIds: ids } : { MaxResults: 500 }), NextToken }));
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  private async volumesOf(instanceIds: string[]): Promise<Map<string, Volume>> {
    const out = new Map<string, Volume>();
    for (const ids of chunked(instanceIds, 200)) {
      let NextToken: string | undefined;
      do {
        const page = await this.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: ids }], MaxResults: 500, NextToken }));
        for (const v of page.Volumes ?? []) if (v.VolumeId) out.set(v.VolumeId, v);
        NextToken = page.NextToken;
      } while (NextToken);
    }
    return out;
  }

  private async kmsKeyOf(v: Volume): Promise<string | undefined> {
    if (!v.Encrypted || !v.KmsKeyId) return undefined;
    const customer = this.options.isCustomerKey ? await this.options.isCustomerKey(v.KmsKeyId) : true;
    return customer ? v.KmsKeyId : undefined;
  }

  private async toServer(instance: Instance, volumes: Map<string, Volume>): Promise<ServerInfo> {
    const disks: ServerDisk[] = [];
    for (const m of instance.BlockDeviceMappings ?? []) {
      const v = m.Ebs?.VolumeId ? volumes.get(m.Ebs.VolumeId) : undefined;
      if (!v || !m.DeviceName) continue;
      const kmsKeyId = await this.kmsKeyOf(v);
      disks.push({ volumeId: v.VolumeId!, device: m.DeviceName, sizeBytes: (v.Size ?? 0) * GIB, ...(kmsKeyId ? { kmsKeyId } : {}), bootable: m.DeviceName === instance.RootDeviceName });
    }
    return { serverId: instance.InstanceId!, name: tagValue(instance.Tags, 'Name') ?? instance.InstanceId!, status: statusOf(instance.State?.Name), disks };
  }

  async listServers(projectId: string): Promise<ServerInfo[]> {
    const instances = await this.instances(projectId);
    const volumes = await this.volumesOf(instances.map((i) => i.InstanceId!));
    return Promise.all(instances.map((i) => this.toServer(i, volumes)));
  }

  private async instance(projectId: string, serverId: string): Promise<Instance> {
    let found: Instance[];
    try {
      found = await this.instances(projectId, [serverId]);
    } catch (err) {
      if (notFound(err, 'InvalidInstanceID')) throw new ServerNotFoundError(`server ${serverId} not found`, { cause: err });
      throw err;
    }
    const instance = found.find((i) => i.InstanceId === serverId);
    if (!instance) throw new ServerNotFoundError(`server ${serverId} not found`);
    return instance;
  }

  async describeServer(projectId: string, serverId: string): Promise<ServerInfo> {
    const instance = await this.instance(projectId, serverId);
    return this.toServer(instance, await this.volumesOf([serverId]));
  }

  /** The project's volume (tagged, or attached to one of its instances); VolumeNotFoundError otherwise. */
  private async volume(projectId: string, volumeId: string): Promise<Volume> {
    let v: Volume | undefined;
    try {
      v = (await this.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes?.[0];
    } catch (err) {
      if (!notFound(err, 'InvalidVolume') && errorName(err) !== 'InvalidParameterValue') throw err;
    }
    if (v && tagValue(v.Tags, PROJECT_TAG) === projectId) return v;
    const attachedTo = (v?.Attachments ?? []).map((a) => a.InstanceId).filter((id): id is string => Boolean(id));
    if (v && attachedTo.length && (await this.instances(projectId, attachedTo).catch(() => [])).length) return v;
    throw new VolumeNotFoundError(`volume ${volumeId} not found`);
  }

  async describe(projectId: string, volumeId: string): Promise<VolumeInfo> {
    const v = await this.volume(projectId, volumeId);
    const kmsKeyId = await this.kmsKeyOf(v);
    const name = tagValue(v.Tags, 'Name');
    const attachedServerId = (v.Attachments ?? []).find((a) => a.InstanceId && (a.State === 'attached' || a.State === 'attaching'))?.InstanceId;
    return { volumeId, sizeBytes: (v.Size ?? 0) * GIB, ...(kmsKeyId ? { kmsKeyId } : {}), ...(name ? { name } : {}), ...(attachedServerId ? { attachedServerId } : {}) };
  }

  // ---- snapshots ----

  async snapshotDisks(projectId: string, serverId: string, volumeIds: string[]): Promise<GroupSnapshot> {
    const instance = await this.instance(projectId, serverId);
    const attached = new Map((instance.BlockDeviceMappings ?? []).filter((m) => m.Ebs?.VolumeId).map((m) => [m.Ebs!.VolumeId!, m.DeviceName]));
    if (!volumeIds.length) throw new EngineStateError(`no disk of server ${serverId} asked for`);
    if (new Set(volumeIds).size !== volumeIds.length) throw new EngineStateError(`a disk is asked for twice: ${volumeIds.join(', ')}`);
    for (const id of volumeIds) if (!attached.has(id)) throw new EngineStateError(`volume ${id} is not a disk of server ${serverId}`);
    const description = `OpenVBS backup of ${serverId}`;
    const tags = (extra: Tag[] = []) => [{ ResourceType: 'snapshot' as const, Tags: [{ Key: PROJECT_TAG, Value: projectId }, ...extra] }];

    let byVolume: Map<string, string>;
    if (volumeIds.length === 1) {
      const s = await this.ec2.send(new CreateSnapshotCommand({ VolumeId: volumeIds[0], Description: description, TagSpecifications: tags([{ Key: VOLUME_TAG, Value: volumeIds[0] }]) }));
      byVolume = new Map([[volumeIds[0]!, s.SnapshotId!]]);
    } else {
      // One multi-volume snapshot: every disk at the same instant (crash-consistent across the disks).
      const asked = new Set(volumeIds);
      const rootVolume = (instance.BlockDeviceMappings ?? []).find((m) => m.DeviceName === instance.RootDeviceName)?.Ebs?.VolumeId;
      const excluded = [...attached.keys()].filter((id) => !asked.has(id) && id !== rootVolume);
      const res = await this.ec2.send(
        new CreateSnapshotsCommand({
          InstanceSpecification: { InstanceId: serverId, ExcludeBootVolume: !rootVolume || !asked.has(rootVolume), ...(excluded.length ? { ExcludeDataVolumeIds: excluded } : {}) },
          Description: description,
          TagSpecifications: tags(),
        }),
      );
      byVolume = new Map();
      const extra: string[] = [];
      for (const s of res.Snapshots ?? []) {
        if (s.VolumeId && asked.has(s.VolumeId) && !byVolume.has(s.VolumeId)) byVolume.set(s.VolumeId, s.SnapshotId!);
        else if (s.SnapshotId) extra.push(s.SnapshotId); // (moto ignores ExcludeDataVolumeIds)
      }
      const missing = volumeIds.filter((id) => !byVolume.has(id));
      if (missing.length) {
        await this.deleteSnapshots([...byVolume.values(), ...extra]);
        throw new EngineStateError(`EC2 took no snapshot of ${missing.join(', ')} on server ${serverId}`);
      }
      await this.deleteSnapshots(extra);
    }
    return { disks: volumeIds.map((volumeId) => ({ volumeId, snapshotId: byVolume.get(volumeId)! })), crashConsistent: true, method: 'ebs', freezeMs: 0 };
  }

  /** A snapshot of one volume (attached or not): what a volume backup reads. */
  async snapshotVolume(projectId: string, volumeId: string): Promise<string> {
    await this.volume(projectId, volumeId);
    const s = await this.ec2.send(
      new CreateSnapshotCommand({
        VolumeId: volumeId,
        Description: `OpenVBS backup of ${volumeId}`,
        TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: PROJECT_TAG, Value: projectId }, { Key: VOLUME_TAG, Value: volumeId }] }],
      }),
    );
    return s.SnapshotId!;
  }

  private async deleteSnapshots(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        await this.ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }));
      } catch (err) {
        if (!notFound(err, 'InvalidSnapshot')) throw err;
      }
    }
  }

  async releaseSnapshots(projectId: string, snapshotIds: string[]): Promise<void> {
    // Only the project's own snapshots are deleted; an unknown, foreign or released one is skipped.
    for (const ids of chunked([...new Set(snapshotIds)], 200)) {
      const owned: string[] = [];
      let NextToken: string | undefined;
      do {
        const page = await this.ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [
              { Name: 'snapshot-id', Values: ids },
              { Name: `tag:${PROJECT_TAG}`, Values: [projectId] },
            ],
            NextToken,
          }),
        );
        for (const s of page.Snapshots ?? []) if (s.SnapshotId && ids.includes(s.SnapshotId)) owned.push(s.SnapshotId);
        NextToken = page.NextToken;
      } while (NextToken);
      await this.deleteSnapshots(owned);
    }
  }

  /** The project's snapshot of this volume, completed; SnapshotNotFoundError, or TransientError while pending. */
  private async snapshot(projectId: string, volumeId: string, snapshotId: string): Promise<Snapshot> {
    let s: Snapshot | undefined;
    try {
      s = (await this.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0];
    } catch (err) {
      if (!notFound(err, 'InvalidSnapshot') && errorName(err) !== 'InvalidParameterValue') throw err;
    }
    const ofVolume = s && (tagValue(s.Tags, VOLUME_TAG) ?? s.VolumeId) === volumeId;
    if (!s || tagValue(s.Tags, PROJECT_TAG) !== projectId || !ofVolume) throw new SnapshotNotFoundError(`snapshot ${snapshotId} of volume ${volumeId} not found`);
    if (s.State === 'pending') throw new TransientError(`snapshot ${snapshotId} of volume ${volumeId} is still pending (${s.Progress ?? '?'})`);
    if (s.State !== 'completed') throw new EngineStateError(`snapshot ${snapshotId} of volume ${volumeId} is ${s.State}: ${s.StateMessage ?? 'no reason given'}`);
    return s;
  }

  // ---- blocks ----

  async openReader(projectId: string, volumeId: string, source?: ReadSource): Promise<BlockReader> {
    if (!source?.snapshotId) {
      throw new EngineStateError(`EBS volume ${volumeId} can only be read through a snapshot: take one with snapshotDisks or snapshotVolume and read that`);
    }
    const snap = await this.snapshot(projectId, volumeId, source.snapshotId);
    // The parent's snapshot only narrows the reads: when it is gone or foreign, every written block is read.
    let since: string | undefined;
    if (source.sinceSnapshotId && source.sinceSnapshotId !== source.snapshotId) {
      since = await this.snapshot(projectId, volumeId, source.sinceSnapshotId).then(
        (s) => s.SnapshotId,
        (err: unknown) => {
          if (err instanceof TransientError) throw err;
          return undefined;
        },
      );
    }
    return new EbsSnapshotReader(this.ebs, snap.SnapshotId!, (snap.VolumeSize ?? 0) * GIB, { concurrency: this.options.readConcurrency, ...(since ? { sinceSnapshotId: since } : {}) });
  }

  /** The target volume, and its instance when attached (which must then be stopped). */
  private async restoreTarget(projectId: string, volumeId: string): Promise<{ volume: Volume; instance?: Instance; device?: string; deleteOnTermination?: boolean }> {
    const volume = await this.volume(projectId, volumeId);
    const attachment = (volume.Attachments ?? []).find((a) => a.InstanceId && a.State !== 'detached');
    if (!attachment) return { volume };
    const instance = await this.instance(projectId, attachment.InstanceId!).catch(async () => {
      const found = (await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [attachment.InstanceId!] }))).Reservations?.[0]?.Instances?.[0];
      if (!found) throw new EngineStateError(`volume ${volumeId} is attached to ${attachment.InstanceId}, which cannot be found`);
      return found;
    });
    if (instance.State?.Name !== 'stopped') {
      throw new EngineStateError(`volume ${volumeId} is attached to server ${attachment.InstanceId}, which is ${instance.State?.Name}: stop it before restoring in place`);
    }
    return { volume, instance, device: attachment.Device!, deleteOnTermination: attachment.DeleteOnTermination === true };
  }

  /** Starts the snapshot a restore of `volumeId` writes into (checks first that the swap will be possible). */
  async startRestore(projectId: string, volumeId: string): Promise<{ snapshotId: string; sizeBytes: number }> {
    const { volume } = await this.restoreTarget(projectId, volumeId);
    const res = await this.ebs.send(
      new StartSnapshotCommand({
        VolumeSize: volume.Size,
        Description: `OpenVBS restore of ${volumeId}`,
        ClientToken: randomUUID(),
        Tags: [
          { Key: PROJECT_TAG, Value: projectId },
          { Key: RESTORED_FROM_TAG, Value: volumeId },
        ],
        // The restored data is never at rest under a weaker key than the volume it replaces.
        ...(volume.Encrypted ? { Encrypted: true, ...(volume.KmsKeyId ? { KmsKeyArn: volume.KmsKeyId } : {}) } : {}),
      }),
    );
    return { snapshotId: res.SnapshotId!, sizeBytes: (volume.Size ?? 0) * GIB };
  }

  /** Completes a restore snapshot, makes a volume of it and puts that volume in place of the target. */
  async finishRestore(projectId: string, volumeId: string, snapshotId: string, changedBlocks: number): Promise<EbsRestoreResult> {
    const target = await this.restoreTarget(projectId, volumeId);
    const old = target.volume;
    await this.ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: changedBlocks }));
    await waitUntilSnapshotCompleted(this.waiter(), { SnapshotIds: [snapshotId] });
    const type = old.VolumeType as VolumeType | undefined;
    const keptTags = (old.Tags ?? []).filter((t) => t.Key && !t.Key.startsWith('aws:') && !t.Key.startsWith('openvbs:'));
    const created = await this.ec2.send(
      new CreateVolumeCommand({
        SnapshotId: snapshotId,
        AvailabilityZone: old.AvailabilityZone,
        Size: old.Size,
        ...(type ? { VolumeType: type } : {}),
        ...((type === 'io1' || type === 'io2' || type === 'gp3') && old.Iops ? { Iops: old.Iops } : {}),
        ...(type === 'gp3' && old.Throughput ? { Throughput: old.Throughput } : {}),
        ...(old.Encrypted ? { Encrypted: true, ...(old.KmsKeyId ? { KmsKeyId: old.KmsKeyId } : {}) } : {}),
        TagSpecifications: [
          {
            ResourceType: 'volume',
            Tags: [...keptTags, { Key: PROJECT_TAG, Value: projectId }, { Key: RESTORED_FROM_TAG, Value: volumeId }],
          },
        ],
      }),
    );
    const newId = created.VolumeId!;
    await waitUntilVolumeAvailable(this.waiter(), { VolumeIds: [newId] });
    // The restore snapshot is, from now on, a snapshot of the new volume.
    await this.ec2.send(new CreateTagsCommand({ Resources: [snapshotId], Tags: [{ Key: VOLUME_TAG, Value: newId }] }));
    const result: EbsRestoreResult = { snapshotId, volumeId: newId, targetVolumeId: volumeId };
    if (target.instance && target.device) {
      const instanceId = target.instance.InstanceId!;
      await this.ec2.send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId }));
      await waitUntilVolumeAvailable(this.waiter(), { VolumeIds: [volumeId] });
      try {
        await this.ec2.send(new AttachVolumeCommand({ VolumeId: newId, InstanceId: instanceId, Device: target.device }));
        await waitUntilVolumeInUse(this.waiter(), { VolumeIds: [newId] });
      } catch (err) {
        // Put the old disk back so the server is left as it was; the new volume stays for inspection.
        await this.ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: target.device })).catch(() => {});
        throw err;
      }
      if (target.deleteOnTermination) {
        await this.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, BlockDeviceMappings: [{ DeviceName: target.device, Ebs: { DeleteOnTermination: true } }] }));
      }
      await this.ec2.send(new CreateTagsCommand({ Resources: [volumeId], Tags: [{ Key: REPLACED_BY_TAG, Value: newId }] }));
      result.instanceId = instanceId;
      result.device = target.device;
    }
    if (!this.options.keepRestoreSnapshots) await this.deleteSnapshots([snapshotId]);
    return result;
  }

  /** A writer into a new snapshot; its flush completes the restore (see the top of this file). */
  async openWriter(projectId: string, volumeId: string, minSizeBytes: number): Promise<EbsRestoreWriter> {
    const { snapshotId, sizeBytes } = await this.startRestore(projectId, volumeId);
    if (sizeBytes < minSizeBytes) {
      await this.deleteSnapshots([snapshotId]).catch(() => {});
      throw new EngineStateError(`volume ${volumeId} (${sizeBytes} bytes) is smaller than the ${minSizeBytes} bytes to restore`);
    }
    return this.snapshotWriter(projectId, volumeId, snapshotId, sizeBytes);
  }

  /**
   * A writer into a restore snapshot already started (startRestore). With `finish` (openWriter) its flush
   * finishes the restore and closing it unflushed deletes the snapshot. Without (one segment task of a
   * restore split over several), flush only waits for the segment's blocks, and the restore's last step
   * calls finishRestore with the sum of the writers' `blocksStored`.
   */
  snapshotWriter(projectId: string, volumeId: string, snapshotId: string, sizeBytes: number, finish = true): EbsRestoreWriter {
    return new EbsSnapshotWriter<EbsRestoreResult | undefined>(this.ebs, snapshotId, sizeBytes, {
      concurrency: this.options.writeConcurrency,
      complete: finish ? (changed) => this.finishRestore(projectId, volumeId, snapshotId, changed) : async () => undefined,
      // An unfinished restore leaves nothing behind (EBS would also cancel the snapshot after its timeout).
      abandon: finish ? () => this.deleteSnapshots([snapshotId]).catch(() => {}) : async () => {},
    });
  }

  // ---- power ----

  async setServerPower(projectId: string, serverId: string, on: boolean): Promise<void> {
    const instance = await this.instance(projectId, serverId);
    const state = instance.State?.Name;
    if (on) {
      if (state !== 'running') {
        if (state !== 'pending') await this.ec2.send(new StartInstancesCommand({ InstanceIds: [serverId] }));
        await waitUntilInstanceRunning(this.waiter(), { InstanceIds: [serverId] });
      }
    } else if (state !== 'stopped') {
      if (state !== 'stopping') await this.ec2.send(new StopInstancesCommand({ InstanceIds: [serverId] }));
      await waitUntilInstanceStopped(this.waiter(), { InstanceIds: [serverId] });
    }
  }
}

/** Bytes of an EBS block (the provider's read and write unit). */
export const EBS_BLOCK_BYTES = EBS_BLOCK;

// The EC2 and EBS rights of each handler under the `ebs` volume provider (lib/aws/ebs-provider.ts), and only
// the actions that handler's steps call. How tight each can be:
// - ec2:Describe* support no resource-level permissions: "*" is the only resource (read-only inventory).
// - Snapshots: every snapshot OpenVBS creates carries `openvbs:project` (tag-on-create, so creation requires
//   the tag in the request), and everything that reads, writes or deletes a snapshot requires that tag on it:
//   no role can touch a snapshot OpenVBS did not make. The project itself is checked by the provider.
// - Instances: only instances tagged `openvbs:project` may be stopped, started, snapshotted or have a disk
//   swapped. Volumes cannot be narrowed by tag: a project's disk may carry no tag of its own (it is the
//   project's through its instance), so volume ARNs are any volume of this account and region.
// - Restores tag the volumes they create on creation (the target's own tags, copied), and tag existing
//   snapshots and volumes only with the two bookkeeping keys `openvbs:volume` and `openvbs:replaced-by`.
// - Encrypted volumes: EC2/EBS use the volume's KMS key on the caller's behalf; the key use is allowed only
//   through EC2 and the EBS direct APIs (kms:ViaService) and each customer key policy must allow the role too.
import { Aws } from 'aws-cdk-lib';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { acknowledgeWildcardResource } from '../nag.ts';

/**
 * What a handler does with volumes: which provider calls its steps make. A restore is one snapshot written by
 * several steps (lib/workflows/steps/volume-restore.ts): started in restore-prepare, written in restore-segment,
 * finished (made a volume and swapped in) in restore-commit.
 */
export type VolumeAccess = 'inventory' | 'snapshot' | 'release' | 'read' | 'restore-start' | 'restore-write' | 'restore-finish' | 'power';

export const VOLUME_ACCESS: Partial<Record<HandlerName, readonly VolumeAccess[]>> = {
  // describeServer / describe (server and volume inventory of the API; volumes are adopted into the catalog on first use)
  api: ['inventory'],
  // describe the volume (size, key); a volume backup of an EBS volume takes its snapshot here (snapshotVolume) and
  // releases it again when it cannot be recorded
  'backup-prepare': ['inventory', 'snapshot', 'release'],
  // openReader on the snapshot: ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock
  'backup-segment': ['read'],
  // the volume's older snapshots once this one is its base; a failed backup's own snapshot
  'backup-commit': ['release'],
  'backup-fail': ['release'],
  // a deleted backup's (or checkpoint's) snapshots: one may be a volume's kept base
  'delete-backup': ['release'],
  'delete-checkpoint': ['release'],
  // startRestore: StartSnapshot (after checking the target can be swapped); a too-small target's snapshot released
  'restore-prepare': ['inventory', 'restore-start', 'release'],
  // snapshotWriter(finish=false): PutSnapshotBlock only
  'restore-segment': ['restore-write'],
  // finishRestore: CompleteSnapshot, CreateVolume, the swap; the new volume described (adopted)
  'restore-commit': ['inventory', 'restore-finish'],
  // the unfinished restore snapshot deleted
  'restore-fail': ['release'],
  // describeServer, snapshotDisks (CreateSnapshots)
  'server-backup-prepare': ['inventory', 'snapshot'],
  // releaseSnapshots: the older snapshots once the next backup is committed, a failed backup's snapshots
  'server-backup-commit': ['release'],
  'server-backup-fail': ['release'],
  // describeServer, setServerPower
  'server-restore-prepare': ['inventory', 'power'],
  'server-restore-commit': ['inventory', 'power'],
  // each disk's unfinished restore snapshot deleted
  'server-restore-fail': ['release'],
  // a policy run protects servers (describeServer through ServerBackupService) and backs up volumes (describe)
  'policy-tick': ['inventory'],
  // runs the fail step of whichever workflow ended unseen (backup-fail, restore-fail, server-backup-fail, ...)
  'execution-failed': ['release'],
};

const TAG = 'openvbs:project';
const arn = (type: string, account = true) => `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${account ? Aws.ACCOUNT_ID : ''}:${type}/*`;
const SNAPSHOTS = () => arn('snapshot', false); // snapshot ARNs carry no account
const VOLUMES = () => arn('volume');
const INSTANCES = () => arn('instance');
const tagged = { StringLike: { [`aws:ResourceTag/${TAG}`]: '?*' } };
/** How cdk-nag names a wildcard ARN of this account and region. */
const nagArn = (type: string) => `arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:${type}/*`;
const taggedOnCreate = { StringLike: { [`aws:RequestTag/${TAG}`]: '?*' } };

/** The statements of one handler's volume access, its cdk-nag acknowledgements added to `role`. */
export function volumeStatementsFor(name: HandlerName, role: IConstruct): PolicyStatement[] {
  const access = new Set(VOLUME_ACCESS[name] ?? []);
  if (!access.size) return [];
  const out: PolicyStatement[] = [];
  const add = (sid: string, actions: string[], resources: string[], conditions?: Record<string, Record<string, unknown>>) =>
    out.push(new PolicyStatement({ sid, effect: Effect.ALLOW, actions, resources, ...(conditions ? { conditions } : {}) }));
  const wildcards = new Map<string, string>();

  const restore = access.has('restore-start') || access.has('restore-write') || access.has('restore-finish');
  const describe: string[] = [];
  if (access.has('inventory') || access.has('power') || access.has('restore-start') || access.has('restore-finish')) describe.push('ec2:DescribeInstances', 'ec2:DescribeVolumes');
  if (access.has('read') || access.has('release') || access.has('restore-finish')) describe.push('ec2:DescribeSnapshots');
  if (describe.length) {
    add('Ec2Describe', describe, ['*']);
    wildcards.set('*', 'EC2 Describe* actions support no resource-level permissions; "*" is the only valid resource (read-only inventory of instances, volumes and snapshots).');
  }
  if (access.has('snapshot')) {
    // CreateSnapshot(s) authorizes the source (instance, volume) and the new snapshot, which must be tagged on creation.
    add('SnapshotSources', ['ec2:CreateSnapshot', 'ec2:CreateSnapshots'], [VOLUMES()]);
    add('SnapshotSourceInstances', ['ec2:CreateSnapshots'], [INSTANCES()], tagged);
    add('NewSnapshots', ['ec2:CreateSnapshot', 'ec2:CreateSnapshots'], [SNAPSHOTS()], taggedOnCreate);
    add('TagNewSnapshots', ['ec2:CreateTags'], [SNAPSHOTS()], { StringEquals: { 'ec2:CreateAction': ['CreateSnapshot', 'CreateSnapshots'] } });
    wildcards.set(nagArn('volume'), "A server's disks are known at run time and may carry no tag of their own (they are a project's through their instance, which must be tagged); the provider checks ownership before every call.");
  }
  if (access.has('snapshot') || access.has('release') || access.has('restore-finish')) {
    add('DeleteOwnSnapshots', ['ec2:DeleteSnapshot'], [SNAPSHOTS()], tagged);
  }
  if (access.has('read')) {
    add('ReadOwnSnapshots', ['ebs:ListSnapshotBlocks', 'ebs:ListChangedBlocks', 'ebs:GetSnapshotBlock'], [SNAPSHOTS()], tagged);
  }
  if (access.has('restore-start')) {
    add('StartRestoreSnapshots', ['ebs:StartSnapshot'], [SNAPSHOTS()], taggedOnCreate);
  }
  if (access.has('restore-write')) {
    add('WriteRestoreSnapshots', ['ebs:PutSnapshotBlock'], [SNAPSHOTS()], tagged);
  }
  if (access.has('restore-finish')) {
    add('CompleteRestoreSnapshots', ['ebs:CompleteSnapshot'], [SNAPSHOTS()], tagged);
    add('RestoreVolumeSource', ['ec2:CreateVolume'], [SNAPSHOTS()], tagged);
    add('RestoredVolumes', ['ec2:CreateVolume'], [VOLUMES()], taggedOnCreate);
    add('TagRestoredVolumes', ['ec2:CreateTags'], [VOLUMES()], { StringEquals: { 'ec2:CreateAction': 'CreateVolume' } });
    add('RestoreBookkeepingTags', ['ec2:CreateTags'], [SNAPSHOTS(), VOLUMES()], { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['openvbs:volume', 'openvbs:replaced-by'] } });
    add('SwapDisks', ['ec2:DetachVolume', 'ec2:AttachVolume'], [VOLUMES()]);
    add('SwapDisksOfOwnInstances', ['ec2:DetachVolume', 'ec2:AttachVolume', 'ec2:ModifyInstanceAttribute'], [INSTANCES()], tagged);
    wildcards.set(nagArn('volume'), 'The restored volume is created at run time and the target may carry no tag of its own (it is a project\'s through its instance, which must be tagged); the provider checks ownership first.');
  }
  if (restore || access.has('read')) {
    // Encrypted snapshots and volumes: EBS uses their key to read blocks, write blocks, and make the volume.
    add('VolumeKeysViaEc2', ['kms:Decrypt', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:CreateGrant', 'kms:DescribeKey'], [`arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`], {
      StringEquals: { 'kms:ViaService': [`ec2.${Aws.REGION}.amazonaws.com`, `ebs.${Aws.REGION}.amazonaws.com`] },
    });
    wildcards.set(
      `arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*`,
      "An encrypted volume's snapshots and its restored volume use the volume's own KMS key, known at run time; the key is usable only through EC2 and the EBS direct APIs (kms:ViaService), and the key policy must allow the role.",
    );
  }
  if (access.has('read') || access.has('release') || restore || access.has('snapshot')) {
    wildcards.set(
      'arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*',
      'Snapshot ids are made at run time; every statement on them requires the openvbs:project tag (on the snapshot, or in the request that creates it), so only snapshots OpenVBS made are touched.',
    );
  }
  if (access.has('power')) {
    add('PowerOwnInstances', ['ec2:StartInstances', 'ec2:StopInstances'], [INSTANCES()], tagged);
  }
  if (access.has('power') || access.has('restore-finish') || access.has('snapshot')) {
    wildcards.set(
      'arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*',
      'Servers are chosen at run time; every statement on instances requires the openvbs:project tag, which marks the instances OpenVBS may act on.',
    );
  }
  for (const [resource, reason] of wildcards) acknowledgeWildcardResource(role, resource, reason);
  return out;
}

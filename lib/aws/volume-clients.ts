// EC2 and EBS clients, apart from clients.ts because of what they cost: the EC2 SDK module alone adds about
// 50 MB to a process's resident memory (measured: S3, DynamoDB and KMS together 41 MB; with EC2 95 MB), and
// only the EBS volume provider needs them. Loaded with it (lib/wiring/volumes.ts), so a process on the file
// provider, or a task that never touches a volume, does not pay for them.
import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { commonConfig } from './clients.ts';

export interface VolumeClients {
  ec2: EC2Client;
  ebs: EBSClient;
}

export function createVolumeClients(env: NodeJS.ProcessEnv = process.env): VolumeClients {
  const common = commonConfig(env);
  return { ec2: new EC2Client(common), ebs: new EBSClient(common) };
}

let shared: VolumeClients | undefined;

/** Process-wide EC2 and EBS clients. */
export function volumeClients(): VolumeClients {
  shared ??= createVolumeClients();
  return shared;
}

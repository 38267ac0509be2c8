// Which VolumeProvider a process uses: OPENVBS_VOLUME_PROVIDER = `file` (the local inventory of image files and
// block devices; the default) or `ebs` (EC2 instances and EBS volumes; what the CDK stack sets on every
// function). Independent of the storage backend (OPENVBS_BACKEND). The EBS provider and its EC2 and EBS
// clients are loaded only when chosen.
import type { VolumeClients } from '../aws/volume-clients.ts';
import type { VolumeProvider } from '../engine/ports.ts';

export const VOLUME_PROVIDER_KINDS = ['file', 'ebs'] as const;
export type VolumeProviderKind = (typeof VOLUME_PROVIDER_KINDS)[number];

/** The environment variable naming the provider. */
export const VOLUME_PROVIDER_ENV = 'OPENVBS_VOLUME_PROVIDER';

export function volumeProviderKind(env: NodeJS.ProcessEnv = process.env): VolumeProviderKind {
  const value = env[VOLUME_PROVIDER_ENV] || 'file';
  if (!(VOLUME_PROVIDER_KINDS as readonly string[]).includes(value)) {
    throw new Error(`${VOLUME_PROVIDER_ENV} must be one of ${VOLUME_PROVIDER_KINDS.join(', ')}, not "${value}"`);
  }
  return value as VolumeProviderKind;
}

export interface VolumeProviderDeps {
  /** The file provider over the process's inventory (lib/wiring/runtime.ts builds it). */
  local: () => VolumeProvider;
  /** EC2 and EBS clients for `ebs`; default the process-wide ones. */
  clients?: VolumeClients;
}

/** The provider `kind` names (default: from the environment). */
export async function openVolumeProvider(deps: VolumeProviderDeps, kind: VolumeProviderKind = volumeProviderKind()): Promise<VolumeProvider> {
  if (kind === 'file') return deps.local();
  const [{ volumeClients }, { EbsVolumeProvider }] = await Promise.all([import('../aws/volume-clients.ts'), import('../aws/ebs-provider.ts')]);
  const clients = deps.clients ?? volumeClients();
  return new EbsVolumeProvider(clients.ec2, clients.ebs);
}

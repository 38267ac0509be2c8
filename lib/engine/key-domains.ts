// Key domains: one data key per (project, KMS key). The data key exists in clear only in memory; the
// catalog keeps it wrapped by KMS under an encryption context naming project and domain, so a wrapped
// key copied to another project or domain does not unwrap.
import { randomBytes } from 'node:crypto';
import { deriveDomainKeys } from './chunk-codec.ts';
import type { DomainKeys } from './chunk-codec.ts';
import type { BackupCatalog, KeyService } from './ports.ts';

export interface KeyDomain {
  projectId: string;
  domainId: string;
  kmsKeyId: string;
  keys: DomainKeys;
}

export function encryptionContext(projectId: string, domainId: string): Record<string, string> {
  return { 'openvbs:project': projectId, 'openvbs:domain': domainId };
}

const CACHE_TTL_MS = 5 * 60_000;

export class KeyDomains {
  private readonly cache = new Map<string, { domain: KeyDomain; expires: number }>();

  private readonly catalog: BackupCatalog;
  private readonly keyService: KeyService;
  /** The service's own KMS key, used for volumes without a customer key. */
  readonly serviceKeyId: string;

  constructor(catalog: BackupCatalog, keyService: KeyService, serviceKeyId: string) {
    this.catalog = catalog;
    this.keyService = keyService;
    this.serviceKeyId = serviceKeyId;
  }

  /** The domain for a volume: the customer key's when the volume is encrypted, else the service key's. */
  async forVolume(projectId: string, customerKmsKeyId: string | undefined): Promise<KeyDomain> {
    const kmsKeyId = customerKmsKeyId ?? this.serviceKeyId;
    const cached = this.fromCache(projectId, kmsKeyId);
    if (cached) return cached;
    let record = await this.catalog.getDomain(projectId, kmsKeyId);
    if (!record) {
      const domainId = `d-${randomBytes(12).toString('hex')}`;
      const { wrapped, plaintext } = await this.keyService.generateDataKey(kmsKeyId, encryptionContext(projectId, domainId));
      plaintext.fill(0);
      record = await this.catalog.putDomainIfAbsent({ projectId, domainId, kmsKeyId, wrappedKey: wrapped, createdAt: new Date().toISOString() });
    }
    return this.unwrap(projectId, kmsKeyId, record.domainId, record.wrappedKey);
  }

  /** The domain a backup was written under. */
  async forBackup(projectId: string, kmsKeyId: string, domainId: string): Promise<KeyDomain> {
    const cached = this.fromCache(projectId, kmsKeyId);
    if (cached && cached.domainId === domainId) return cached;
    const record = await this.catalog.getDomain(projectId, kmsKeyId);
    if (!record || record.domainId !== domainId) throw new Error(`key domain ${domainId} of project ${projectId} not found`);
    return this.unwrap(projectId, kmsKeyId, domainId, record.wrappedKey);
  }

  private fromCache(projectId: string, kmsKeyId: string): KeyDomain | undefined {
    const hit = this.cache.get(`${projectId}\n${kmsKeyId}`);
    return hit && hit.expires > Date.now() ? hit.domain : undefined;
  }

  private async unwrap(projectId: string, kmsKeyId: string, domainId: string, wrapped: Buffer): Promise<KeyDomain> {
    const dataKey = await this.keyService.unwrap(kmsKeyId, wrapped, encryptionContext(projectId, domainId));
    const domain: KeyDomain = { projectId, domainId, kmsKeyId, keys: deriveDomainKeys(dataKey, domainId) };
    dataKey.fill(0);
    this.cache.set(`${projectId}\n${kmsKeyId}`, { domain, expires: Date.now() + CACHE_TTL_MS });
    return domain;
  }
}

// Domain records -> the JSON the VBS API shows (field names exactly as VBS spells them).
import type { z } from '@hono/zod-openapi';
import { jobProgress } from '../catalog/jobs.ts';
import type { JobRecord } from '../catalog/jobs.ts';
import type { TokenRecord } from '../catalog/tokens.ts';
import type { VolumeRecord } from '../catalog/volumes.ts';
import { gigabytes } from '../service/vbs-service.ts';
import type { BackupDetail, QuotaUsage } from '../service/vbs-service.ts';
import type { Backup, BackupSummary, Job, QuotaResponse, TokenResponse, Volume } from './schemas.ts';

export function backupLinks(baseUrl: string, projectId: string, backupId: string) {
  return [
    { href: `${baseUrl}/v2/${projectId}/backups/${backupId}`, rel: 'self' },
    { href: `${baseUrl}/${projectId}/backups/${backupId}`, rel: 'bookmark' },
  ];
}

export function backupSummaryView(detail: BackupDetail, baseUrl: string): z.infer<typeof BackupSummary> {
  const r = detail.record;
  return { id: r.backupId, name: r.name, links: backupLinks(baseUrl, r.projectId, r.backupId) };
}

/** `service_metadata`, a JSON string as VBS shows it (DL 3 = deduplicated and compressed). */
export function serviceMetadata(detail: BackupDetail): string {
  const r = detail.record;
  return JSON.stringify({
    Type: r.parentId ? '1' : '0',
    progress: String(detail.progress),
    CMKID: r.customerKey ? r.kmsKeyId : '',
    ST: String(r.extra?.ST ?? 0),
    bootable: String(r.extra?.bootable === true),
    DL: '3',
  });
}

export function backupView(detail: BackupDetail, baseUrl: string, availabilityZone: string): z.infer<typeof Backup> {
  const r = detail.record;
  const snapshotId = r.extra?.snapshotId;
  return {
    id: r.backupId,
    name: r.name,
    status: r.status,
    description: r.description ?? null,
    availability_zone: availabilityZone,
    volume_id: r.volumeId,
    fail_reason: r.failReason ?? null,
    size: gigabytes(r.sizeBytes),
    object_count: r.stats?.chunkCount ?? 0,
    container: null,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    data_timestamp: r.createdAt,
    'os-bak-tenant-attr:tenant_id': r.projectId,
    service_metadata: serviceMetadata(detail),
    has_dependent_backups: false,
    snapshot_id: typeof snapshotId === 'string' ? snapshotId : null,
    is_incremental: Boolean(r.parentId),
    links: backupLinks(baseUrl, r.projectId, r.backupId),
  };
}

export function jobView(job: JobRecord): z.infer<typeof Job> {
  return {
    job_id: job.jobId,
    job_type: job.jobType,
    status: job.status,
    begin_time: job.beginTime ?? job.createdAt ?? null,
    end_time: job.endTime ?? null,
    error_code: job.errorCode ?? null,
    fail_reason: job.failReason ?? null,
    entities: job.entities ?? {},
    sub_jobs: [],
    progress: jobProgress(job),
    bytes_done: job.bytesDone ?? 0,
    bytes_total: job.bytesTotal ?? 0,
  };
}

export function volumeView(v: VolumeRecord): z.infer<typeof Volume> {
  return {
    id: v.volumeId,
    name: v.name,
    status: v.status,
    size: gigabytes(v.sizeBytes),
    size_bytes: v.sizeBytes,
    path: v.path,
    encrypted: Boolean(v.kmsKeyId),
    kms_key_id: v.kmsKeyId ?? null,
    created_at: v.createdAt,
    updated_at: v.updatedAt,
  };
}

export function quotaView(usage: QuotaUsage[]): z.infer<typeof QuotaResponse> {
  return { quotas: { resources: usage.map((u) => ({ type: u.type, used: u.used, reserved: u.reserved, quota: u.quota })) } };
}

export function tokenView(token: string, record: TokenRecord): z.infer<typeof TokenResponse> {
  return { token: { id: record.tokenId, token, project_id: record.projectId, created_at: record.createdAt } };
}

// Server backups on the wire: the CSBS v1 (Karbor-style) request and response schemas, field names as CSBS
// spells them, and the views that turn the service's checkpoints into them. Types follow what the public SDK
// (gophertelekomcloud csbs/v1) decodes into: `extend_info.size` and each volume backup's `size` are integer MB,
// `source_volume_size` integer GB, `average_speed` integer MB/s, `fail_code` an object, `resource_graph` a string
// or null. Unknown request fields are ignored, as CSBS clients send more than we use.
//
// Our own figures in an item: `size` is the data the backup covers (non-zero bytes of its disks, MB);
// `space_saving_ratio` the percent of that data this backup did not have to store (reused from the parent,
// deduplicated, compressed); `average_speed` the disks' bytes over the job's duration. How the disks were
// captured is an OpenVBS extension inside `extend_info`: `os-openvbs:crash_consistent`,
// `os-openvbs:snapshot_method`, `os-openvbs:freeze_ms`, and the server job: `os-openvbs:job_id`.
import { z } from '@hono/zod-openapi';
import type { JobRecord } from '../../catalog/jobs.ts';
import {
  BACKUP_DESCRIPTION_MAX,
  BACKUP_DESCRIPTION_PATTERN,
  BACKUP_NAME_MAX,
  BACKUP_NAME_PATTERN,
  TAGS_MAX,
  TAG_KEY_MAX,
  TAG_VALUE_MAX,
} from '../../service/backup-rules.ts';
import { SERVER_RESOURCE_TYPE } from '../../service/server-backups.ts';
import type { CheckpointView } from '../../service/server-backups.ts';
import type { CheckpointRecord } from '../../catalog/checkpoints.ts';
import { gigabytes } from '../../service/sizes.ts';
import { ProjectParams, Timestamp, documented, idParam, text, vbsTime } from '../schemas.ts';

/** Statuses of a checkpoint item (reference: csbs-api.md); ours are a subset. */
export const CHECKPOINT_STATUSES = ['waiting_protect', 'protecting', 'available', 'waiting_restore', 'restoring', 'error', 'waiting_delete', 'deleting', 'deleted'] as const;

export const ProviderParams = ProjectParams.extend({ provider_id: idParam('provider_id') });
export const ResourceParams = ProviderParams.extend({ resource_id: idParam('resource_id') });
export const CheckpointParams = ProviderParams.extend({ checkpoint_id: idParam('checkpoint_id') });
export const ItemParams = ProjectParams.extend({ checkpoint_item_id: idParam('checkpoint_item_id') });

// ---- requests ----

const MAX_CHECKS = 64;
const idString = (description: string) => text(128, 1).openapi({ description });
const resourceType = () => text(255, 1).openapi({ description: `${SERVER_RESOURCE_TYPE} (any other type is answered result false)`, example: SERVER_RESOURCE_TYPE });

const VolumeMapping = z.object({
  backup_id: idString('A disk backup of the checkpoint (volume_backups[].id)'),
  volume_id: idString('The server’s disk to restore it onto'),
});

const CheckProtectable = z.object({ resource_id: idString('The server'), resource_type: resourceType() });
const CheckRestorable = z.object({
  checkpoint_item_id: idString('The checkpoint item to restore'),
  target: z.object({
    resource_id: idString('The server restored onto'),
    resource_type: resourceType(),
    volumes: z.array(VolumeMapping).max(64).nullish(),
  }),
});

export const ResourcesActionBody = z
  .union([
    z.object({ check_protectable: z.array(CheckProtectable).min(1).max(MAX_CHECKS) }),
    z.object({ check_restorable: z.array(CheckRestorable).min(1).max(MAX_CHECKS) }),
  ])
  .openapi('CsbsResourcesActionRequest', {}, { unionPreferredType: 'oneOf' });

const Tag = z.object({ key: documented({ minLength: 1, maxLength: TAG_KEY_MAX }), value: documented({ maxLength: TAG_VALUE_MAX }) });

export const ProtectBody = z
  .object({
    protect: z.object({
      backup_name: documented({
        pattern: BACKUP_NAME_PATTERN,
        minLength: 1,
        maxLength: BACKUP_NAME_MAX,
        description: `1-${BACKUP_NAME_MAX} letters, digits, "_" or "-", not starting with "auto" (VolumeBackup.0003-0005); default manualbk_ and 8 hex digits`,
      }).nullish(),
      description: documented({ pattern: BACKUP_DESCRIPTION_PATTERN, maxLength: BACKUP_DESCRIPTION_MAX, description: 'No "<" or ">" (VolumeBackup.0006)' }).nullish(),
      incremental: z.boolean().nullish().openapi({ description: 'false: every disk backed up in full; default true (incremental where a disk has an earlier backup)' }),
      resource_type: resourceType().nullish(),
      tags: z.array(Tag).nullish().openapi({ maxItems: TAGS_MAX, description: `At most ${TAGS_MAX} tags (OpenVBS.1004)` }),
      extra_info: z.unknown().optional().openapi({ description: 'Accepted and ignored' }),
    }),
  })
  .openapi('CsbsProtectRequest');

export const RestoreBody = z
  .object({
    restore: z.object({
      provider_id: idString('The CSBS provider id'),
      checkpoint_id: idString('The server backup restored'),
      restore_target: z.string().max(1024).nullish().openapi({ description: 'Accepted and ignored' }),
      parameters: z
        .object({
          checkpoint_item_id: idString('Its checkpoint item (checked when given)').nullish(),
          power_on: z.boolean().nullish().openapi({ description: 'Start the server after the restore; default true' }),
          targets: z
            .object({
              server_id: idString('The server restored onto; default the one backed up').nullish(),
              volumes: z.array(VolumeMapping).max(64).nullish().openapi({ description: 'Default: each disk backup onto the server’s disk on the same device' }),
            })
            .nullish(),
        })
        .nullish(),
    }),
  })
  .openapi('CsbsRestoreRequest');

/**
 * A query time: `2018-08-16T06:35:46.346549` as VBS writes it, or ISO 8601; a time without a zone is UTC. The
 * pattern (stated in the document) is the whole rule: any date it admits is read, days past a month's end
 * rolling over as Date.UTC rolls them.
 */
export const QUERY_TIME_PATTERN =
  '^(\\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])(?:[Tt ]([01]\\d|2[0-3]):([0-5]\\d)(?::([0-5]\\d)(?:\\.(\\d{1,9}))?)?)?([Zz]|[+-](?:0\\d|1[0-4]):?[0-5]\\d)?$';
const QUERY_TIME = new RegExp(QUERY_TIME_PATTERN);

/** The query time as ISO 8601 (UTC), or undefined when it does not match QUERY_TIME_PATTERN. */
export function queryTime(value: string): string | undefined {
  const m = QUERY_TIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', fraction = '', zone = 'Z'] = m;
  const at = new Date(0);
  at.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  at.setUTCHours(Number(h), Number(mi), Number(sec), Number(fraction.slice(0, 3).padEnd(3, '0')));
  if (!/^[Zz]$/.test(zone)) {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    at.setTime(at.getTime() - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000);
  }
  return at.toISOString();
}

const timeParam = (name: string, description: string) =>
  z
    .string()
    .regex(QUERY_TIME, `${name} must be a time like 2018-08-16T06:35:46.346549 (UTC) or ISO 8601`)
    .optional()
    .openapi({ param: { name, in: 'query' }, description, example: '2018-08-16T06:35:46.346549' });

export const ITEM_SORT_PATTERN = '^(created_at|name|status)(:(asc|desc))?$';

export const ItemFilterQuery = z.object({
  status: z.enum(CHECKPOINT_STATUSES).optional().openapi({ param: { name: 'status', in: 'query' } }),
  name: z.string().max(255).optional().openapi({ param: { name: 'name', in: 'query' } }),
  resource_id: z.string().max(255).optional().openapi({ param: { name: 'resource_id', in: 'query' }, description: 'The server' }),
  resource_name: z.string().max(255).optional().openapi({ param: { name: 'resource_name', in: 'query' } }),
  resource_type: z.string().max(255).optional().openapi({ param: { name: 'resource_type', in: 'query' }, description: `${SERVER_RESOURCE_TYPE}; any other type matches nothing` }),
  checkpoint_id: z.string().max(255).optional().openapi({ param: { name: 'checkpoint_id', in: 'query' } }),
  start_time: timeParam('start_time', 'Created at or after'),
  end_time: timeParam('end_time', 'Created at or before'),
});

export const ListItemsQuery = ItemFilterQuery.extend({
  sort: z
    .string()
    .regex(new RegExp(ITEM_SORT_PATTERN), 'sort must be created_at, name or status, optionally followed by :asc or :desc')
    .optional()
    .openapi({ param: { name: 'sort', in: 'query' }, description: 'Default created_at:desc', example: 'created_at:desc' }),
  limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ param: { name: 'limit', in: 'query' }, description: 'At most 1000 per page (the default)' }),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().openapi({ param: { name: 'offset', in: 'query' } }),
  marker: idParam('marker', 'query').optional().openapi({ description: 'Id of the last item of the previous page (404 when there is none)' }),
});
export type ItemFilterQuery = z.infer<typeof ItemFilterQuery>;
export type ListItemsQuery = z.infer<typeof ListItemsQuery>;

// ---- responses ----

const Capability = z.object({
  result: z.boolean(),
  resource_type: z.string(),
  resource_id: z.string(),
  checkpoint_item_id: z.string().optional(),
  error_code: z.string().optional(),
  error_msg: z.string().optional(),
});

export const ResourcesActionResponse = z
  .union([z.object({ protectable: z.array(Capability) }), z.object({ restorable: z.array(Capability) })])
  .openapi('CsbsResourcesActionResponse', {}, { unionPreferredType: 'oneOf' });

export const CheckpointResponse = z
  .object({
    checkpoint: z.object({
      id: z.string(),
      status: z.enum(CHECKPOINT_STATUSES),
      created_at: Timestamp,
      project_id: z.string(),
      protection_plan: z.object({
        id: z.string(),
        name: z.string(),
        resources: z.array(z.object({ id: z.string(), type: z.string(), name: z.string(), extra_info: z.string() })),
      }),
      resource_graph: z.string().nullable(),
      extra_info: z.object({ job_id: z.string(), checkpoint_item_id: z.string() }).openapi({ description: 'The server backup’s job (follow it with the job API) and its checkpoint item' }),
    }),
  })
  .openapi('CsbsCheckpointResponse');

const VolumeBackup = z.object({
  id: z.string().openapi({ description: 'The disk’s VBS backup (it restores the disk alone)' }),
  name: z.string(),
  status: z.string().openapi({ description: 'The VBS backup status (creating, available, error, restoring, deleting); `deleted` once it is gone' }),
  bootable: z.boolean(),
  incremental: z.boolean(),
  snapshot_id: z.string().nullable(),
  source_volume_id: z.string(),
  source_volume_size: z.number().int().openapi({ description: 'GB, rounded up' }),
  size: z.number().int().openapi({ description: 'MB of data the backup covers (non-zero blocks)' }),
  space_saving_ratio: z.number().int().openapi({ description: 'Percent of that data this backup did not store' }),
  average_speed: z.number().int().openapi({ description: 'MB/s' }),
  image_type: z.string(),
  device: z.string().openapi({ description: 'Where the disk was attached (OpenVBS)' }),
});

export const CheckpointItem = z
  .object({
    id: z.string(),
    checkpoint_id: z.string(),
    name: z.string(),
    resource_id: z.string(),
    resource_type: z.string(),
    status: z.enum(CHECKPOINT_STATUSES),
    created_at: Timestamp,
    updated_at: Timestamp,
    description: z.string().nullable(),
    tags: z.array(z.object({ key: z.string(), value: z.string() })),
    backup_data: z.object({
      eip: z.string(),
      cloudservicetype: z.string(),
      ram: z.number().int(),
      vcpus: z.number().int(),
      private_ip: z.string(),
      disk: z.number().int().openapi({ description: 'GB of the boot disk' }),
      imagetype: z.string(),
      __openstack_region_name: z.string(),
    }),
    extend_info: z.object({
      auto_trigger: z.boolean(),
      average_speed: z.number().int().openapi({ description: 'MB/s over all disks, once finished' }),
      fail_code: z.object({ Code: z.string(), Description: z.string() }).partial(),
      fail_reason: z.string(),
      incremental: z.boolean(),
      progress: z.number().int(),
      resource_az: z.string(),
      resource_name: z.string(),
      resource_type: z.string(),
      size: z.number().int().openapi({ description: 'MB of data the disk backups cover' }),
      space_saving_ratio: z.number().int().openapi({ description: 'Percent of that data not stored' }),
      finished_at: Timestamp.nullable(),
      supported_restore_mode: z.string(),
      image_type: z.string(),
      volume_backups: z.array(VolumeBackup),
      'os-openvbs:job_id': z.string().openapi({ description: 'The server backup’s job (its sub_jobs are the disks)' }),
      'os-openvbs:crash_consistent': z.boolean().nullable().openapi({ description: 'Every disk captured at one instant; null until captured' }),
      'os-openvbs:snapshot_method': z.enum(['clone', 'freeze-copy', 'copy', 'ebs']).nullable().openapi({ description: 'How the disks were captured' }),
      'os-openvbs:freeze_ms': z.number().int().nullable().openapi({ description: 'Milliseconds the server’s writers were held' }),
    }),
  })
  .openapi('CheckpointItem');

export const ItemListResponse = z.object({
  checkpoint_items: z.array(CheckpointItem),
  checkpoint_items_links: z.array(z.object({ href: z.string(), rel: z.literal('next') })).optional(),
});
export const ItemResponse = z.object({ checkpoint_item: CheckpointItem });
export const CountResponse = z.object({ count: z.number().int() });
export const DeleteResponse = z.object({ job_id: z.string().openapi({ description: 'The deletion’s job (OpenVBS; CSBS clients ignore the body)' }) });

export const RestoreResponse = z
  .object({
    restore: z.object({
      id: z.string().openapi({ description: 'The restore’s job id (follow it with the job API; its sub_jobs are the disks)' }),
      project_id: z.string(),
      provider_id: z.string(),
      checkpoint_id: z.string(),
      restore_target: z.string().nullable(),
      parameters: z.object({
        checkpoint_item_id: z.string(),
        power_on: z.boolean(),
        targets: z.object({ server_id: z.string(), volumes: z.array(z.object({ backup_id: z.string(), volume_id: z.string() })).optional() }),
      }),
      status: z.literal('in_progress'),
      resources_status: z.record(z.string(), z.string()),
      resources_reason: z.record(z.string(), z.string()),
    }),
  })
  .openapi('CsbsRestoreResponse');

export const QuotaResponse = z.object({
  quotas: z.object({
    resources: z.array(z.object({ type: z.enum(['backups', 'backup_capacity']), unit: z.string().optional(), used: z.number().int(), quota: z.number().int() })),
  }),
});

// ---- views ----

const MB = 1024 * 1024;
const megabytes = (bytes: number) => Math.ceil(bytes / MB);

/** Percent of `logical` bytes not stored. */
function savingRatio(stored: number, logical: number): number {
  if (!(logical > 0)) return 0;
  return Math.min(100, Math.max(0, Math.round((1 - stored / logical) * 100)));
}

/** MB/s of `bytes` between two ISO times; 0 when either is missing. */
function speed(bytes: number, from: string | undefined, to: string | undefined): number {
  if (!from || !to) return 0;
  const seconds = (Date.parse(to) - Date.parse(from)) / 1000;
  return seconds > 0 ? Math.round(bytes / MB / seconds) : 0;
}

const protectionPlan = (c: CheckpointRecord) => ({
  id: `manual_${c.checkpointId}`,
  name: `server protect plan for ${c.serverId}`,
  resources: [{ id: c.serverId, type: SERVER_RESOURCE_TYPE, name: c.serverName, extra_info: '{}' }],
});

export function checkpointView(c: CheckpointRecord): z.infer<typeof CheckpointResponse> {
  return {
    checkpoint: {
      id: c.checkpointId,
      status: c.status,
      created_at: vbsTime(c.createdAt),
      project_id: c.projectId,
      protection_plan: protectionPlan(c),
      resource_graph: null,
      extra_info: { job_id: c.jobId, checkpoint_item_id: c.itemId },
    },
  };
}

export function itemView(view: CheckpointView, availabilityZone: string): z.infer<typeof CheckpointItem> {
  const c = view.checkpoint;
  const jobOf = (jobId: string): JobRecord | undefined => view.subJobs.find((j) => j.jobId === jobId);
  const volumeBackups = view.diskBackups.map((d): z.infer<typeof VolumeBackup> => {
    const job = jobOf(d.disk.jobId);
    const logical = d.logicalBytes ?? 0;
    return {
      id: d.disk.backupId,
      name: d.name ?? '',
      status: d.status ?? (c.status === 'protecting' ? 'creating' : 'deleted'),
      bootable: d.disk.bootable,
      incremental: d.parentId !== undefined,
      snapshot_id: d.disk.snapshotId ?? null,
      source_volume_id: d.disk.volumeId,
      source_volume_size: gigabytes(d.disk.sizeBytes),
      size: megabytes(logical),
      space_saving_ratio: savingRatio(d.storedBytes ?? 0, logical),
      average_speed: job?.status === 'SUCCESS' ? speed(job.bytesTotal || d.disk.sizeBytes, job.beginTime ?? job.createdAt, job.endTime) : 0,
      image_type: 'backup',
      device: d.disk.device,
    };
  });
  const logical = view.diskBackups.reduce((sum, d) => sum + (d.logicalBytes ?? 0), 0);
  const stored = view.diskBackups.reduce((sum, d) => sum + (d.storedBytes ?? 0), 0);
  const diskBytes = c.disks.reduce((sum, d) => sum + d.sizeBytes, 0);
  const boot = c.disks.find((d) => d.bootable) ?? c.disks[0];
  const started = view.job?.beginTime ?? view.job?.createdAt ?? c.createdAt;
  return {
    id: c.itemId,
    checkpoint_id: c.checkpointId,
    name: c.name,
    resource_id: c.serverId,
    resource_type: SERVER_RESOURCE_TYPE,
    status: c.status,
    created_at: vbsTime(c.createdAt),
    updated_at: vbsTime(c.updatedAt),
    description: c.description ?? null,
    tags: c.tags,
    backup_data: { eip: '', cloudservicetype: '', ram: 0, vcpus: 0, private_ip: '', disk: boot ? gigabytes(boot.sizeBytes) : 0, imagetype: '', __openstack_region_name: '' },
    extend_info: {
      auto_trigger: c.autoTrigger,
      average_speed: c.finishedAt && c.status !== 'error' ? speed(diskBytes, started, c.finishedAt) : 0,
      fail_code: c.failCode ? { Code: c.failCode, Description: c.failReason ?? '' } : {},
      fail_reason: c.failReason ?? '',
      incremental: c.incremental,
      progress: view.progress,
      resource_az: availabilityZone,
      resource_name: c.serverName,
      resource_type: SERVER_RESOURCE_TYPE,
      size: megabytes(logical),
      space_saving_ratio: savingRatio(stored, logical),
      finished_at: c.finishedAt ? vbsTime(c.finishedAt) : null,
      supported_restore_mode: 'backup',
      image_type: 'backup',
      volume_backups: volumeBackups,
      'os-openvbs:job_id': c.jobId,
      'os-openvbs:crash_consistent': c.snapshot?.crashConsistent ?? null,
      'os-openvbs:snapshot_method': c.snapshot?.method ?? null,
      'os-openvbs:freeze_ms': c.snapshot ? Math.round(c.snapshot.freezeMs) : null,
    },
  };
}

export function quotaView(usage: { backups: number; capacityMb: number }): z.infer<typeof QuotaResponse> {
  return {
    quotas: {
      resources: [
        { type: 'backups', used: usage.backups, quota: -1 },
        { type: 'backup_capacity', unit: 'GB', used: Math.ceil(usage.capacityMb / 1024), quota: -1 },
      ],
    },
  };
}

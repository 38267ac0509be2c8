// VBS backup policies on the wire: request and response schemas (field names as VBS spells them, `rentention`
// included) and the views. Requests check shape and types; the ranges and rules with their own codes are the
// service's (OpenVBS.1801), stated here from the same constants.
import { z } from '@hono/zod-openapi';
import type { PolicyRecord, PolicyTask } from '../../catalog/policies.ts';
import { TAGS_MAX, TAG_KEY_MAX, TAG_VALUE_MAX } from '../../service/backup-rules.ts';
import { FREQUENCY_RANGE, POLICY_NAME_MAX, RETENTION_DAY_RANGE, RETENTION_NUM_RANGE, START_TIMES_MAX } from '../../service/policies.ts';
import type { PolicyView, ResourceOutcome, ScheduledPolicyInput } from '../../service/policies.ts';
import { Timestamp, documented, idParam, vbsTime } from '../schemas.ts';

export const PolicyParams = z.object({ project_id: idParam('project_id'), policy_id: idParam('policy_id') });
export const PolicyTagParams = PolicyParams.extend({ key: z.string().min(1).max(255).openapi({ param: { name: 'key', in: 'path' } }) });

/** A whole number, as a JSON number or a string of digits. */
const count = (range: readonly [number, number], description: string) =>
  z
    .union([z.number(), z.string().regex(/^-?\d+$/, 'must be a whole number').transform(Number)])
    .openapi({ type: 'integer', minimum: range[0], maximum: range[1], description });

const Tag = z.object({ key: documented({ minLength: 1, maxLength: TAG_KEY_MAX }), value: documented({ maxLength: TAG_VALUE_MAX }) });
const Tags = z.array(Tag).openapi({ maxItems: TAGS_MAX, description: `At most ${TAGS_MAX}; they go onto every backup the policy makes (OpenVBS.1004)` });

const ScheduledPolicy = z.object({
  start_time: z.string().max(24 * 6).optional().openapi({ description: `"HH:mm" in the policy's time_zone, or a comma list of up to ${START_TIMES_MAX}`, example: '02:00,14:00' }),
  frequency: count(FREQUENCY_RANGE, 'Every N days (wins over week_frequency)').optional(),
  week_frequency: z.array(z.string().max(3)).max(7).optional().openapi({ description: 'Weekdays: SUN, MON, TUE, WED, THU, FRI, SAT' }),
  rentention_num: count(RETENTION_NUM_RANGE, 'Backups kept per volume (wins over rentention_day)').optional(),
  rentention_day: count(RETENTION_DAY_RANGE, 'Days a backup is kept').optional(),
  remain_first_backup_of_curMonth: z.union([z.enum(['Y', 'N', 'y', 'n']), z.boolean()]).optional().openapi({ description: '"Y"/"N" (or a boolean): keep the first backup of the current month besides' }),
  status: z.enum(['ON', 'OFF']).optional(),
});

export const PolicyBody = z
  .object({
    backup_policy_name: documented({ minLength: 1, maxLength: POLICY_NAME_MAX, description: 'Letters, digits, "_" and "-"; not starting with "default" (OpenVBS.1801)' }).optional(),
    scheduled_policy: ScheduledPolicy.optional(),
    tags: Tags.optional(),
    time_zone: z.string().max(64).optional().openapi({ description: 'UTC±HH:MM such as UTC+08:00 (or an IANA zone name); default UTC' }),
  })
  .openapi('BackupPolicyRequest');
export type PolicyBody = z.infer<typeof PolicyBody>;

export function scheduledInput(s: z.infer<typeof ScheduledPolicy> | undefined): ScheduledPolicyInput | undefined {
  if (!s) return undefined;
  const remain = s.remain_first_backup_of_curMonth;
  return {
    ...(s.start_time !== undefined ? { startTime: s.start_time } : {}),
    ...(s.frequency !== undefined ? { frequency: s.frequency } : {}),
    ...(s.week_frequency !== undefined ? { weekFrequency: s.week_frequency } : {}),
    ...(s.rentention_num !== undefined ? { retentionNum: s.rentention_num } : {}),
    ...(s.rentention_day !== undefined ? { retentionDay: s.rentention_day } : {}),
    ...(remain !== undefined ? { remainFirstBackupOfCurMonth: remain === true || remain === 'Y' || remain === 'y' } : {}),
    ...(s.status !== undefined ? { status: s.status } : {}),
  };
}

export const AssociateBody = z
  .object({
    backup_policy_id: z.string().min(1).max(128),
    resources: z.array(z.object({ resource_id: z.string().min(1).max(255), resource_type: z.string().max(64).default('volume') })).min(1).max(256),
  })
  .openapi('AssociateRequest');

export const DisassociateBody = z.object({ resources: z.array(z.object({ resource_id: z.string().min(1).max(255) })).min(1).max(256) }).openapi('DisassociateRequest');

export const TagBody = z.object({ tag: Tag });
export const TagActionBody = z.object({ action: z.enum(['create', 'update', 'delete']), tags: z.array(z.object({ key: z.string().min(1).max(TAG_KEY_MAX), value: z.string().max(TAG_VALUE_MAX).optional() })).max(TAGS_MAX * 2) });

const TagValues = z.array(z.object({ key: z.string().max(TAG_KEY_MAX), values: z.array(z.string().max(TAG_VALUE_MAX)).max(TAGS_MAX) })).max(TAGS_MAX);
export const ResourceInstancesBody = z.object({
  action: z.enum(['filter', 'count']),
  tags: TagValues.optional(),
  tags_any: TagValues.optional(),
  not_tags: TagValues.optional(),
  not_tags_any: TagValues.optional(),
  limit: z.union([z.number().int().min(1).max(1000), z.string().regex(/^\d+$/).transform(Number)]).optional(),
  offset: z.union([z.number().int().min(0), z.string().regex(/^\d+$/).transform(Number)]).optional(),
});

export const TASK_STATUSES = ['RUNNING', 'EXECUTE_TIMEOUT', 'WAITING', 'EXECUTE_FAIL', 'EXECUTE_SUCCESS', 'SKIP'] as const;

export const TasksQuery = z.object({
  sort_dir: z.enum(['asc', 'desc']).optional().openapi({ param: { name: 'sort_dir', in: 'query' } }),
  limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ param: { name: 'limit', in: 'query' } }),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().openapi({ param: { name: 'offset', in: 'query' } }),
  marker: idParam('marker', 'query').optional(),
  status: z.enum(TASK_STATUSES).optional().openapi({ param: { name: 'status', in: 'query' } }),
  job_id: idParam('job_id', 'query').optional(),
});

export const TickBody = z.object({ at: z.string().datetime({ offset: true }).optional().openapi({ description: 'The time the tick runs at (default now); ISO 8601' }) });

// ---- responses ----

const ScheduledPolicyOut = z.object({
  start_time: z.string(),
  frequency: z.number().int().optional(),
  week_frequency: z.array(z.string()).optional(),
  rentention_num: z.number().int().optional(),
  rentention_day: z.number().int().optional(),
  remain_first_backup_of_curMonth: z.enum(['Y', 'N']),
  status: z.enum(['ON', 'OFF']),
});

export const Policy = z
  .object({
    backup_policy_id: z.string(),
    backup_policy_name: z.string(),
    scheduled_policy: ScheduledPolicyOut,
    policy_resource_count: z.number().int(),
    tags: z.array(Tag),
    time_zone: z.string().optional(),
  })
  .openapi('BackupPolicy');

export const PolicyListResponse = z.object({ backup_policies: z.array(Policy) });

export function policyView({ policy, resourceCount }: PolicyView): z.infer<typeof Policy> {
  const s = policy.scheduled!;
  return {
    backup_policy_id: policy.policyId,
    backup_policy_name: policy.name,
    scheduled_policy: {
      start_time: s.startTimes.join(','),
      ...(s.frequency !== undefined ? { frequency: s.frequency } : {}),
      ...(s.weekFrequency !== undefined ? { week_frequency: s.weekFrequency } : {}),
      ...(s.retentionNum !== undefined ? { rentention_num: s.retentionNum } : {}),
      ...(s.retentionDay !== undefined ? { rentention_day: s.retentionDay } : {}),
      remain_first_backup_of_curMonth: s.remainFirstBackupOfCurMonth ? 'Y' : 'N',
      status: policy.enabled ? 'ON' : 'OFF',
    },
    policy_resource_count: resourceCount,
    tags: policy.tags,
    ...(policy.timeZoneGiven ? { time_zone: policy.timeZone } : {}),
  };
}

const Resource = z.object({
  resource_id: z.string(),
  resource_type: z.string(),
  availability_zone: z.string().optional(),
  os_vol_host_attr: z.string().optional(),
  error_code: z.string().optional(),
  error_msg: z.string().optional(),
});
export const ResourcesResponse = z.object({ success_resources: z.array(Resource), fail_resources: z.array(Resource) }).openapi('PolicyResources');

export function resourcesView(result: { success: ResourceOutcome[]; fail: ResourceOutcome[] }): z.infer<typeof ResourcesResponse> {
  const one = (r: ResourceOutcome) => ({
    resource_id: r.resourceId,
    resource_type: r.resourceType,
    ...(r.availabilityZone !== undefined ? { availability_zone: r.availabilityZone, os_vol_host_attr: `openvbs.${r.availabilityZone}` } : {}),
    ...(r.errorCode !== undefined ? { error_code: r.errorCode, error_msg: r.errorMessage ?? '' } : {}),
  });
  return { success_resources: result.success.map(one), fail_resources: result.fail.map(one) };
}

/** The OpenVBS extension attributes of a task (VBS clients ignore keys they do not know). */
export const TASK_SCHEDULED_ATTR = 'os-openvbs-task-attr:scheduled_at';
export const TASK_LATE_ATTR = 'os-openvbs-task-attr:late';

const Task = z
  .object({
    status: z.enum(TASK_STATUSES),
    job_id: z.string().openapi({ description: 'The task’s id' }),
    created_at: Timestamp,
    finished_at: Timestamp.nullable(),
    backup_name: z.string(),
    resource_id: z.string(),
    resource_type: z.string(),
    vbs_job_id: z.string().nullable().openapi({ description: 'The backup job (GET /v1/{project_id}/jobs/{job_id}); null when skipped' }),
    fail_reason: z.string().nullable().optional(),
    [TASK_SCHEDULED_ATTR]: Timestamp,
    [TASK_LATE_ATTR]: z.boolean().openapi({ description: 'Ran well after its slot, or for slots missed while the scheduler was down' }),
  })
  .openapi('BackupPolicyTask');

export const TasksResponse = z.object({ count: z.number().int(), tasks: z.array(Task) });

export function taskView(t: PolicyTask): z.infer<typeof Task> {
  return {
    status: t.status,
    job_id: t.taskId,
    created_at: vbsTime(t.createdAt),
    finished_at: t.finishedAt ? vbsTime(t.finishedAt) : null,
    backup_name: t.backupName,
    resource_id: t.resourceId,
    resource_type: t.resourceType,
    vbs_job_id: t.jobId ?? null,
    fail_reason: t.reason ?? null,
    [TASK_SCHEDULED_ATTR]: vbsTime(t.scheduledAt),
    [TASK_LATE_ATTR]: t.late,
  };
}

export const TagsResponse = z.object({ tags: z.array(Tag) });
export const ProjectTagsResponse = z.object({ tags: z.array(z.object({ key: z.string(), values: z.array(z.string()) })) });
export const ResourceInstancesResponse = z.object({
  resources: z.array(z.object({ resource_id: z.string(), resource_name: z.string(), resource_detail: z.null(), tags: z.array(Tag) })).optional(),
  total_count: z.number().int(),
});

export function resourceInstanceView(p: PolicyRecord) {
  return { resource_id: p.policyId, resource_name: p.name, resource_detail: null, tags: p.tags };
}

export const TickResponse = z.object({
  at: Timestamp,
  runs: z.array(z.object({ backup_policy_id: z.string(), scheduled_at: Timestamp, late: z.boolean(), tasks: z.number().int() })),
  missed: z.array(z.object({ backup_policy_id: z.string(), scheduled_at: Timestamp })),
  settled: z.number().int(),
});

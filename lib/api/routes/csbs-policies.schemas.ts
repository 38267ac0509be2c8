// CSBS backup policies on the wire: request and response schemas (field names as CSBS spells them) and the
// views. Numbers a CSBS client may send as strings (`max_backups`, `retention_duration_days`, the generations)
// and `permanent` / `enabled` as "true"/"false" are accepted either way; responses give numbers and booleans
// (what the public SDK's show and list decode). Ranges and rules with their own codes are the service's
// (OpenVBS.1801), stated here from the same constants.
import { z } from '@hono/zod-openapi';
import type { CsbsOperation, PolicyRecord } from '../../catalog/policies.ts';
import type { CheckpointRecord } from '../../catalog/checkpoints.ts';
import { TAGS_MAX, TAG_KEY_MAX, TAG_VALUE_MAX } from '../../service/backup-rules.ts';
import {
  CSBS_DESCRIPTION_MAX,
  CSBS_POLICY_NAME_MAX,
  GENERATIONS_RANGE,
  MAX_BACKUPS_RANGE,
  OPERATIONS_MAX,
  PATTERN_MAX,
  POLICY_SERVERS_MAX,
  RETENTION_DAYS_RANGE,
} from '../../service/csbs-policies.ts';
import type { CsbsOperationInput, CsbsPolicyInput, CsbsPolicyView } from '../../service/csbs-policies.ts';
import { CSBS_PROVIDER_ID, SERVER_RESOURCE_TYPE } from '../../service/server-backups.ts';
import { CHECKPOINT_STATUSES } from './checkpoints.schemas.ts';
import { ProjectParams, Timestamp, documented, idParam, vbsTime } from '../schemas.ts';

export const CsbsPolicyParams = ProjectParams.extend({ policy_id: idParam('policy_id') });
export const ProviderParams = ProjectParams.extend({ provider_id: idParam('provider_id') });

/** A whole number, as a JSON number or a string of digits. */
const count = (range: readonly [number, number], description: string) =>
  z.union([z.number(), z.string().regex(/^-?\d+$/, 'must be a whole number').transform(Number)]).openapi({ type: 'integer', minimum: range[0], maximum: range[1], description });

/** A boolean, or "true" / "false" as some CSBS responses and clients write it. */
const flag = (description: string) =>
  z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE']).transform((v) => v.toLowerCase() === 'true')]).openapi({ type: 'boolean', description });

const Tag = z.object({ key: documented({ minLength: 1, maxLength: TAG_KEY_MAX }), value: documented({ maxLength: TAG_VALUE_MAX }) });

const OperationDefinition = z.object({
  max_backups: count(MAX_BACKUPS_RANGE, 'Backups kept per server; -1: not set').optional(),
  retention_duration_days: count(RETENTION_DAYS_RANGE, 'Days a backup is kept; -1: not set').optional(),
  permanent: flag('Backups are never deleted (wins over every other rule)').optional(),
  day_backups: count(GENERATIONS_RANGE, 'Keep the newest backup of each of the latest N days').optional(),
  week_backups: count(GENERATIONS_RANGE, 'Keep the newest backup of each of the latest N (ISO) weeks').optional(),
  month_backups: count(GENERATIONS_RANGE, 'Keep the newest backup of each of the latest N months').optional(),
  year_backups: count(GENERATIONS_RANGE, 'Keep the newest backup of each of the latest N years').optional(),
  timezone: z
    .union([z.string().max(64), z.number()])
    .optional()
    .openapi({ description: 'Zone of the generations: UTC±HH:MM (such as UTC+08:00), an IANA name, or whole hours east of UTC; required with them' }),
  plan_id: z.string().max(128).optional().openapi({ description: 'Accepted and ignored (the policy’s own id)' }),
  provider_id: z.string().max(128).optional().openapi({ description: 'Accepted and ignored' }),
});

const Operation = z.object({
  id: z.string().max(128).optional().openapi({ description: 'On update: the operation changed (a new one without it)' }),
  name: z.string().max(CSBS_POLICY_NAME_MAX).optional(),
  description: z.string().max(CSBS_DESCRIPTION_MAX).nullish(),
  enabled: flag('Whether this operation fires (default true)').optional(),
  operation_type: z.string().max(64).optional().openapi({ description: '"backup"' }),
  trigger_id: z.string().max(128).optional().openapi({ description: 'Accepted and ignored' }),
  trigger: z
    .object({
      properties: z
        .object({ pattern: z.string().max(PATTERN_MAX).optional().openapi({ description: 'An iCalendar RRULE in UTC (a bare FREQ=…, an RRULE: line or a VCALENDAR): FREQ=DAILY or WEEKLY, BYDAY, BYHOUR, BYMINUTE, INTERVAL; runs at least an hour apart' }) })
        .passthrough()
        .optional(),
    })
    .passthrough()
    .optional(),
  operation_definition: OperationDefinition.optional(),
});

const Resource = z.object({
  id: z.string().min(1).max(128),
  type: z.string().max(255).openapi({ example: SERVER_RESOURCE_TYPE }),
  name: z.string().max(255).nullish(),
  extra_info: z.unknown().optional(),
});

export const CsbsPolicyBody = z
  .object({
    policy: z.object({
      name: documented({ minLength: 1, maxLength: CSBS_POLICY_NAME_MAX, description: 'Letters, digits, "_" and "-" (OpenVBS.1801); required on create' }).optional(),
      description: z.string().max(CSBS_DESCRIPTION_MAX).nullish(),
      provider_id: z.string().max(128).optional().openapi({ description: CSBS_PROVIDER_ID }),
      parameters: z.unknown().optional().openapi({ description: 'Accepted and ignored ({"common":{}})' }),
      resources: z.array(Resource).max(POLICY_SERVERS_MAX).optional().openapi({ description: `Servers (${SERVER_RESOURCE_TYPE}), at most ${POLICY_SERVERS_MAX}; each in at most one policy (OpenVBS.1804). On update: the whole new list` }),
      scheduled_operations: z.array(Operation).max(OPERATIONS_MAX).optional().openapi({ minItems: 1, description: 'At least one (OpenVBS.1801); required on create' }),
      tags: z.array(Tag).max(TAGS_MAX * 2).optional().openapi({ description: `At most ${TAGS_MAX}; they go onto every backup the policy makes (OpenVBS.1004)` }),
      status: z.enum(['enabled', 'disabled', 'suspended']).optional().openapi({ description: 'OpenVBS: "suspended" pauses the whole policy, "enabled" resumes it' }),
    }),
  })
  .openapi('CsbsPolicyRequest');
export type CsbsPolicyBody = z.infer<typeof CsbsPolicyBody>;

function operationInput(op: z.infer<typeof Operation>): CsbsOperationInput {
  const d = op.operation_definition ?? {};
  const pattern = op.trigger?.properties?.pattern;
  const out: CsbsOperationInput = {};
  const set = <K extends keyof CsbsOperationInput>(key: K, value: CsbsOperationInput[K] | null | undefined) => {
    if (value !== undefined && value !== null) out[key] = value;
  };
  set('id', op.id);
  set('name', op.name);
  set('description', op.description);
  set('enabled', op.enabled);
  set('operationType', op.operation_type);
  // Some clients send an empty trigger on update: no pattern given.
  set('pattern', pattern ? pattern : undefined);
  set('maxBackups', d.max_backups);
  set('retentionDurationDays', d.retention_duration_days);
  set('permanent', d.permanent);
  set('dayBackups', d.day_backups);
  set('weekBackups', d.week_backups);
  set('monthBackups', d.month_backups);
  set('yearBackups', d.year_backups);
  set('timezone', d.timezone);
  return out;
}

export function policyInput(body: CsbsPolicyBody): CsbsPolicyInput {
  const p = body.policy;
  return {
    ...(p.name !== undefined ? { name: p.name } : {}),
    ...(p.description != null ? { description: p.description } : {}),
    ...(p.provider_id !== undefined ? { providerId: p.provider_id } : {}),
    ...(p.resources !== undefined ? { resources: p.resources.map((r) => ({ id: r.id, type: r.type, ...(r.name != null ? { name: r.name } : {}) })) } : {}),
    ...(p.scheduled_operations !== undefined ? { operations: p.scheduled_operations.map(operationInput) } : {}),
    ...(p.tags !== undefined ? { tags: p.tags } : {}),
    ...(p.status !== undefined ? { status: p.status } : {}),
  };
}

export const ListPoliciesQuery = z.object({
  name: z.string().max(255).optional().openapi({ param: { name: 'name', in: 'query' } }),
  status: z.enum(['enabled', 'disabled', 'suspended']).optional().openapi({ param: { name: 'status', in: 'query' } }),
  sort: z
    .string()
    .regex(/^(created_at|name)(:(asc|desc))?$/, 'sort must be created_at or name, optionally followed by :asc or :desc')
    .optional()
    .openapi({ param: { name: 'sort', in: 'query' }, description: 'Default created_at:desc' }),
  limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ param: { name: 'limit', in: 'query' } }),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().openapi({ param: { name: 'offset', in: 'query' } }),
  marker: idParam('marker', 'query').optional().openapi({ description: 'Id of the last policy of the previous page (404 when there is none)' }),
});
export type ListPoliciesQuery = z.infer<typeof ListPoliciesQuery>;

export const ExecuteBody = z
  .object({
    checkpoint: z.object({
      plan_id: z.string().min(1).max(128).openapi({ description: 'The policy run' }),
      parameters: z
        .object({
          auto_trigger: flag('Accepted; a policy’s backups are auto_trigger either way').optional(),
          resources: z
            .array(z.union([z.string().max(128), z.object({ id: z.string().max(128), type: z.string().max(255).optional() }).passthrough()]))
            .max(POLICY_SERVERS_MAX)
            .optional()
            .openapi({ description: 'Only these servers of the policy (ids or {id, type}); default all' }),
        })
        .passthrough()
        .nullish(),
    }),
  })
  .openapi('CsbsExecutePolicyRequest');

// ---- responses ----

const OperationOut = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  enabled: z.boolean(),
  operation_type: z.literal('backup'),
  trigger_id: z.string(),
  trigger: z.object({
    id: z.string(),
    name: z.string(),
    type: z.literal('time'),
    properties: z.object({ pattern: z.string(), start_time: z.string().openapi({ description: 'yyyy-mm-dd hh:mm:ss (UTC)' }) }),
  }),
  operation_definition: z.object({
    max_backups: z.number().int().optional(),
    retention_duration_days: z.number().int().optional(),
    permanent: z.boolean(),
    day_backups: z.number().int().optional(),
    week_backups: z.number().int().optional(),
    month_backups: z.number().int().optional(),
    year_backups: z.number().int().optional(),
    timezone: z.string().optional(),
    plan_id: z.string(),
    provider_id: z.string(),
  }),
});

export const CsbsPolicy = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    provider_id: z.string(),
    project_id: z.string(),
    parameters: z.object({ common: z.object({}) }),
    created_at: Timestamp,
    status: z.enum(['enabled', 'disabled', 'suspended']),
    resources: z.array(z.object({ id: z.string(), type: z.string(), name: z.string() })),
    scheduled_operations: z.array(OperationOut),
    tags: z.array(z.object({ key: z.string(), value: z.string() })),
    user_id: z.null(),
  })
  .openapi('CsbsPolicy');

export const CsbsPolicyResponse = z.object({ policy: CsbsPolicy });
export const CsbsPolicyListResponse = z.object({
  policies: z.array(CsbsPolicy),
  policies_links: z.array(z.object({ href: z.string(), rel: z.literal('next') })).optional(),
});

/** `2018-08-20 07:31:32` (the trigger's start_time, as CSBS writes it). */
const spaceTime = (iso: string) => vbsTime(iso).slice(0, 19).replace('T', ' ');

function operationView(op: CsbsOperation, policyId: string, startTime: string): z.infer<typeof OperationOut> {
  const definition: z.infer<typeof OperationOut>['operation_definition'] = { permanent: op.permanent ?? false, plan_id: policyId, provider_id: CSBS_PROVIDER_ID };
  if (op.maxBackups !== undefined) definition.max_backups = op.maxBackups;
  if (op.retentionDurationDays !== undefined) definition.retention_duration_days = op.retentionDurationDays;
  if (op.dayBackups !== undefined) definition.day_backups = op.dayBackups;
  if (op.weekBackups !== undefined) definition.week_backups = op.weekBackups;
  if (op.monthBackups !== undefined) definition.month_backups = op.monthBackups;
  if (op.yearBackups !== undefined) definition.year_backups = op.yearBackups;
  if (op.timezone !== undefined) definition.timezone = op.timezone;
  return {
    id: op.id,
    name: op.name,
    description: op.description ?? '',
    enabled: op.enabled,
    operation_type: 'backup',
    // One trigger per operation: it shares the operation's id.
    trigger_id: op.id,
    trigger: { id: op.id, name: 'default', type: 'time', properties: { pattern: op.pattern, start_time: startTime } },
    operation_definition: definition,
  };
}

export function policyView(view: CsbsPolicyView): z.infer<typeof CsbsPolicy> {
  const p = view.policy;
  const startTime = spaceTime(p.createdAt);
  return {
    id: p.policyId,
    name: p.name,
    description: p.description ?? '',
    provider_id: CSBS_PROVIDER_ID,
    project_id: p.projectId,
    parameters: { common: {} },
    created_at: vbsTime(p.createdAt),
    status: view.status,
    resources: view.resources.map((r) => ({ id: r.id, type: SERVER_RESOURCE_TYPE, name: r.name })),
    scheduled_operations: (p.operations ?? []).map((op) => operationView(op, p.policyId, startTime)),
    tags: p.tags,
    user_id: null,
  };
}

const StartedCheckpoint = z.object({ id: z.string(), checkpoint_item_id: z.string(), job_id: z.string(), resource_id: z.string() });

export const ExecuteResponse = z
  .object({
    checkpoint: z.object({
      id: z.string().openapi({ description: 'The first server’s checkpoint (a checkpoint holds one server here)' }),
      status: z.enum(CHECKPOINT_STATUSES),
      created_at: Timestamp,
      project_id: z.string(),
      protection_plan: z.object({
        id: z.string().openapi({ description: 'The policy' }),
        name: z.string(),
        resources: z.array(z.object({ id: z.string(), type: z.string(), name: z.string(), extra_info: z.string() })),
      }),
      resource_graph: z.string().nullable(),
      extra_info: z.object({
        job_id: z.string(),
        checkpoint_item_id: z.string(),
        'os-openvbs:checkpoints': z.array(StartedCheckpoint).openapi({ description: 'Every checkpoint the run started, one per server' }),
      }),
    }),
  })
  .openapi('CsbsExecutePolicyResponse');

export function executeView(policy: PolicyRecord, checkpoints: CheckpointRecord[]): z.infer<typeof ExecuteResponse> {
  const first = checkpoints[0]!;
  return {
    checkpoint: {
      id: first.checkpointId,
      status: first.status,
      created_at: vbsTime(first.createdAt),
      project_id: first.projectId,
      protection_plan: {
        id: policy.policyId,
        name: policy.name,
        resources: checkpoints.map((c) => ({ id: c.serverId, type: SERVER_RESOURCE_TYPE, name: c.serverName, extra_info: '{}' })),
      },
      resource_graph: null,
      extra_info: {
        job_id: first.jobId,
        checkpoint_item_id: first.itemId,
        'os-openvbs:checkpoints': checkpoints.map((c) => ({ id: c.checkpointId, checkpoint_item_id: c.itemId, job_id: c.jobId, resource_id: c.serverId })),
      },
    },
  };
}

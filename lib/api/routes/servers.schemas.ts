// Servers on the wire (an OpenVBS extension: the local server inventory). Shapes:
//   POST /v1/{project_id}/servers                         {"server":{name, status?, disks?:[{volume_id, device?, bootable?}]}}
//   POST /v1/{project_id}/servers/{server_id}/action      {"os-start":{}} or {"os-stop":{}}   (as Nova)
//   POST /v1/{project_id}/servers/{server_id}/disks       {"disk":{volume_id, device?, bootable?}}   attach
//   DELETE /v1/{project_id}/servers/{server_id}/disks/{volume_id}                                  detach
//   PUT /v1/{project_id}/servers/{server_id}/hooks        {"hooks":{freeze:[argv], thaw:[argv], timeout_seconds?}}
//   DELETE /v1/{project_id}/servers/{server_id}/hooks
// Every answer but the deletes is {"server":{...}} (a list: {"servers":[...]}).
import { z } from '@hono/zod-openapi';
import type { ServerRecord } from '../../catalog/servers.ts';
import { MAX_SERVER_DISKS } from '../../catalog/servers.ts';
import { ID_PATTERN } from '../../service/ids.ts';
import { DEVICE_PATTERN, HOOK_ARG_MAX, HOOK_MAX_ARGS, HOOK_TIMEOUT_MAX_SECONDS, SERVER_NAME_MAX } from '../../volumes/servers.ts';
import { ProjectParams, Timestamp, idParam, text, vbsTime } from '../schemas.ts';

export const ServerParams = ProjectParams.extend({ server_id: idParam('server_id') });
export const ServerDiskParams = ServerParams.extend({ volume_id: idParam('volume_id') });

const Status = z.enum(['running', 'stopped']);

const DiskRequest = z
  .strictObject({
    volume_id: z.string().regex(ID_PATTERN, 'must be 1-128 letters, digits, "_" or "-"').openapi({ description: 'A volume of the project, available and attached nowhere' }),
    device: z.string().regex(DEVICE_PATTERN, 'must be a device name like /dev/vda, /dev/sdb or /dev/xvdc').optional().openapi({ description: 'Default: the first free /dev/vdX', example: '/dev/vdb' }),
    bootable: z.boolean().optional().openapi({ description: 'Default: true for the server’s first disk' }),
  })
  .openapi('ServerDiskRequest');

export const CreateServerBody = z
  .object({
    server: z.strictObject({
      name: text(SERVER_NAME_MAX, 1),
      status: Status.optional().openapi({
        description: 'Default `running`. Say `stopped` only when nothing writes the disks: a stopped server’s backups are consistent without hooks',
      }),
      disks: z.array(DiskRequest).max(MAX_SERVER_DISKS).optional(),
    }),
  })
  .openapi('CreateServerRequest');

export const ServerActionBody = z
  .union([z.strictObject({ 'os-start': z.object({}).strict() }), z.strictObject({ 'os-stop': z.object({}).strict() })], {
    error: 'give exactly one of {"os-start":{}} or {"os-stop":{}}',
  })
  .openapi('ServerActionRequest', {}, { unionPreferredType: 'oneOf' });

export const AttachDiskBody = z.object({ disk: DiskRequest }).openapi('AttachDiskRequest');

const NO_NUL = '^[^\\x00]*$';
const Argv = z
  .array(z.string().max(HOOK_ARG_MAX).regex(new RegExp(NO_NUL), 'must not contain NUL'))
  .min(1)
  .max(HOOK_MAX_ARGS)
  .refine((argv) => argv[0]?.startsWith('/'), 'the program (first argument) must be an absolute path')
  .openapi({
    description: 'A command as its arguments, the program first (an absolute path); run without a shell',
    // What the refine above checks, stated for the document (OpenAPI 3.1 prefixItems; the metadata type does not list it).
    prefixItems: [{ type: 'string', pattern: `^/(?:${NO_NUL.slice(1, -1)})$`, maxLength: HOOK_ARG_MAX }],
    example: ['/usr/bin/virsh', 'domfsfreeze', 'web'],
  } as Record<string, unknown>);

export const ServerHooksBody = z
  .object({
    hooks: z.strictObject({
      freeze: Argv,
      thaw: Argv,
      timeout_seconds: z.number().int().min(1).max(HOOK_TIMEOUT_MAX_SECONDS).optional().openapi({ description: 'How long either hook may run before it is killed (default 60)' }),
    }),
  })
  .openapi('ServerHooksRequest');

const ServerDisk = z.object({ volume_id: z.string(), device: z.string(), bootable: z.boolean() });

export const Server = z
  .object({
    id: z.string(),
    name: z.string(),
    status: Status,
    disks: z.array(ServerDisk),
    hooks: z
      .object({ freeze: z.array(z.string()), thaw: z.array(z.string()), timeout_seconds: z.number().int().nullable() })
      .nullable()
      .openapi({ description: 'The freeze and thaw commands a backup of the running server runs around its capture; null: none' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('Server');

export const ServerResponse = z.object({ server: Server });
export const ServerListResponse = z.object({ servers: z.array(Server) });

export function serverView(s: ServerRecord): z.infer<typeof Server> {
  return {
    id: s.serverId,
    name: s.name,
    status: s.status,
    disks: s.disks.map((d) => ({ volume_id: d.volumeId, device: d.device, bootable: d.bootable })),
    hooks: s.freezeHook && s.thawHook ? { freeze: s.freezeHook, thaw: s.thawHook, timeout_seconds: s.hookTimeoutSeconds ?? null } : null,
    created_at: vbsTime(s.createdAt),
    updated_at: vbsTime(s.updatedAt),
  };
}

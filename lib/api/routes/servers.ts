// Servers (OpenVBS extension, local inventory): create, list, show, delete; start and stop (Nova's
// os-start / os-stop actions); attach and detach disks; freeze and thaw hooks. Shapes: ./servers.schemas.ts.
// Every route needs an admin token (lib/api/auth.ts: only backups, restores and jobs are open to user tokens).
import { createRoute } from '@hono/zod-openapi';
import type { ServerInventory } from '../../volumes/servers.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, adminResponses, errorResponses, json, jsonBody } from '../schemas.ts';
import {
  AttachDiskBody,
  CreateServerBody,
  ServerActionBody,
  ServerDiskParams,
  ServerHooksBody,
  ServerListResponse,
  ServerParams,
  ServerResponse,
  serverView,
} from './servers.schemas.ts';

const tags = ['Servers (OpenVBS)'];
const responses = { ...errorResponses, ...adminResponses };
const diskConflict = json(
  ErrorResponse,
  'A disk cannot be attached (attached elsewhere, not available, device taken, 24 disks already: OpenVBS.1402) or a job holds it (VolumeBackup.0012)',
);

const createServerRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/servers',
  tags,
  summary: 'Create a server of the local inventory, optionally with its disks',
  request: { params: ProjectParams, body: jsonBody(CreateServerBody) },
  responses: { 201: json(ServerResponse, 'The server'), ...responses, 409: diskConflict },
});

const listServersRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/servers',
  tags,
  summary: 'List servers, oldest first',
  request: { params: ProjectParams },
  responses: { 200: json(ServerListResponse, 'Servers'), ...responses },
});

const showServerRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/servers/{server_id}',
  tags,
  summary: 'Show a server',
  request: { params: ServerParams },
  responses: { 200: json(ServerResponse, 'The server'), ...responses },
});

const deleteServerRoute = createRoute({
  method: 'delete',
  path: '/v1/{project_id}/servers/{server_id}',
  tags,
  summary: 'Delete a server; its disks are detached (the volumes stay). Refused while a job holds one of them',
  request: { params: ServerParams },
  responses: { 204: { description: 'Deleted' }, ...responses, 409: diskConflict },
});

const serverActionRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/servers/{server_id}/action',
  tags,
  summary: 'Start (os-start) or stop (os-stop) the server: sets the status a backup trusts (the service runs nothing)',
  request: { params: ServerParams, body: jsonBody(ServerActionBody) },
  responses: { 200: json(ServerResponse, 'The server'), ...responses },
});

const attachDiskRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/servers/{server_id}/disks',
  tags,
  summary: 'Attach a volume to the server as a disk (the volume becomes in-use)',
  request: { params: ServerParams, body: jsonBody(AttachDiskBody) },
  responses: { 200: json(ServerResponse, 'The server'), ...responses, 409: diskConflict },
});

const detachDiskRoute = createRoute({
  method: 'delete',
  path: '/v1/{project_id}/servers/{server_id}/disks/{volume_id}',
  tags,
  summary: 'Detach a disk (the volume becomes available). Refused while a job holds it',
  request: { params: ServerDiskParams },
  responses: { 204: { description: 'Detached' }, ...responses, 409: diskConflict },
});

const setHooksRoute = createRoute({
  method: 'put',
  path: '/v1/{project_id}/servers/{server_id}/hooks',
  tags,
  summary: 'Set the freeze and thaw commands a backup of the running server runs around its capture',
  request: { params: ServerParams, body: jsonBody(ServerHooksBody) },
  responses: {
    200: json(ServerResponse, 'The server'),
    ...responses,
    403: json(ErrorResponse, 'Not an admin token (OpenVBS.0403), or the operator has not allowed hooks (OPENVBS_ALLOW_SERVER_HOOKS=1; OpenVBS.1403)'),
  },
});

const clearHooksRoute = createRoute({
  method: 'delete',
  path: '/v1/{project_id}/servers/{server_id}/hooks',
  tags,
  summary: 'Remove the hooks: backups of the running server are then not crash-consistent (crash_consistent false)',
  request: { params: ServerParams },
  responses: { 204: { description: 'Removed' }, ...responses },
});

export function serverRoutes(servers: ServerInventory) {
  const app = createRouter();

  app.openapi(createServerRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { server } = c.req.valid('json');
    const record = await servers.create(project_id, {
      name: server.name,
      ...(server.status !== undefined ? { status: server.status } : {}),
      disks: (server.disks ?? []).map((d) => ({ volumeId: d.volume_id, ...(d.device !== undefined ? { device: d.device } : {}), ...(d.bootable !== undefined ? { bootable: d.bootable } : {}) })),
    });
    return c.json({ server: serverView(record) }, 201);
  });

  app.openapi(listServersRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ servers: (await servers.list(project_id)).map(serverView) }, 200);
  });

  app.openapi(showServerRoute, async (c) => {
    const { project_id, server_id } = c.req.valid('param');
    return c.json({ server: serverView(await servers.get(project_id, server_id)) }, 200);
  });

  app.openapi(deleteServerRoute, async (c) => {
    const { project_id, server_id } = c.req.valid('param');
    await servers.delete(project_id, server_id);
    return c.body(null, 204);
  });

  app.openapi(serverActionRoute, async (c) => {
    const { project_id, server_id } = c.req.valid('param');
    const action = c.req.valid('json');
    const record = 'os-start' in action ? await servers.start(project_id, server_id) : await servers.stop(project_id, server_id);
    return c.json({ server: serverView(record) }, 200);
  });

  app.openapi(attachDiskRoute, async (c) => {
    const { project_id, server_id } = c.req.valid('param');
    const { disk } = c.req.valid('json');
    const record = await servers.attach(project_id, server_id, {
      volumeId: disk.volume_id,
      ...(disk.device !== undefined ? { device: disk.device } : {}),
      ...(disk.bootable !== undefined ? { bootable: disk.bootable } : {}),
    });
    return c.json({ server: serverView(record) }, 200);
  });

  app.openapi(detachDiskRoute, async (c) => {
    const { project_id, server_id, volume_id } = c.req.valid('param');
    await servers.detach(project_id, server_id, volume_id);
    return c.body(null, 204);
  });

  app.openapi(setHooksRoute, async (c) => {
    const { project_id, server_id } = c.req.valid('param');
    const { hooks } = c.req.valid('json');
    const record = await servers.setHooks(project_id, server_id, {
      freeze: hooks.freeze,
      thaw: hooks.thaw,
      ...(hooks.timeout_seconds !== undefined ? { timeoutSeconds: hooks.timeout_seconds } : {}),
    });
    return c.json({ server: serverView(record) }, 200);
  });

  app.openapi(clearHooksRoute, async (c) => {
    const { project_id, server_id } = c.req.valid('param');
    await servers.clearHooks(project_id, server_id);
    return c.body(null, 204);
  });

  return app;
}

// Volumes (OpenVBS extension): create a sparse image or register an existing one, list, show, delete.
import { createRoute } from '@hono/zod-openapi';
import { GIB } from '../../service/sizes.ts';
import type { VolumeInventory } from '../../volumes/inventory.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, adminResponses, errorResponses, json, jsonBody } from '../schemas.ts';
import { CreateVolumeBody, VolumeCreatedResponse, VolumeListResponse, VolumeParams, VolumeResponse, volumeView } from './volumes.schemas.ts';

const tags = ['Volumes (OpenVBS)'];

const createVolumeRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/volumes',
  tags,
  summary: 'Create a sparse image volume (empty, or restored from a backup as a job), or register an existing image or block device',
  request: { params: ProjectParams, body: jsonBody(CreateVolumeBody) },
  responses: {
    200: json(VolumeCreatedResponse, 'The volume (and, from a backup, the restore job)'),
    ...errorResponses,
    400: json(ErrorResponse, 'A bad body (VolumeBackup.0002), size or path (OpenVBS.1101), or a size below the backup’s (VolumeBackup.0209)'),
    403: json(ErrorResponse, 'Not an admin token (OpenVBS.0403), or registering this path is not allowed here (OpenVBS.1102)'),
    404: json(ErrorResponse, 'kms_key_id names no key of this project (OpenVBS.1104), or backup_id no backup of the project or shared with it (OpenVBS.0404)'),
    409: json(ErrorResponse, 'Path already registered (OpenVBS.1103), the key is disabled (OpenVBS.1104), or the backup is not available (VolumeBackup.0089)'),
  },
});

const listVolumesRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/volumes',
  tags,
  summary: 'List volumes',
  request: { params: ProjectParams },
  responses: { 200: json(VolumeListResponse, 'Volumes'), ...errorResponses, ...adminResponses },
});

const showVolumeRoute = createRoute({
  method: 'get',
  path: '/v2/{project_id}/volumes/{volume_id}',
  tags,
  summary: 'Show a volume',
  request: { params: VolumeParams },
  responses: { 200: json(VolumeResponse, 'The volume'), ...errorResponses, ...adminResponses },
});

const deleteVolumeRoute = createRoute({
  method: 'delete',
  path: '/v2/{project_id}/volumes/{volume_id}',
  tags,
  summary: 'Delete a volume (a managed image is removed with it); refused while a job holds it',
  request: { params: VolumeParams },
  responses: { 204: { description: 'Deleted' }, ...errorResponses, ...adminResponses, 409: json(ErrorResponse, 'A job holds the volume (VolumeBackup.0012)') },
});

export function volumeRoutes(volumes: VolumeInventory) {
  const app = createRouter();

  app.openapi(createVolumeRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const { volume } = c.req.valid('json');
    const kms = volume.kms_key_id ? { kmsKeyId: volume.kms_key_id } : {};
    if ('path' in volume) {
      const sizeBytes = volume.size_bytes !== undefined ? { sizeBytes: volume.size_bytes } : {};
      return c.json({ volume: volumeView(await volumes.register(project_id, { name: volume.name, path: volume.path, ...kms, ...sizeBytes })) }, 200);
    }
    const size = 'size' in volume ? { sizeBytes: volume.size * GIB } : 'size_bytes' in volume ? { sizeBytes: volume.size_bytes } : undefined;
    if (volume.backup_id !== undefined) {
      const made = await volumes.createFromBackup(project_id, { name: volume.name, backupId: volume.backup_id, ...size, ...kms });
      return c.json({ volume: volumeView(made.volume), job_id: made.jobId }, 200);
    }
    // Without backup_id the body fits a sized form (the schema's union), so `size` is set.
    const record = await volumes.create(project_id, { name: volume.name, sizeBytes: size!.sizeBytes, ...kms });
    return c.json({ volume: volumeView(record) }, 200);
  });

  app.openapi(listVolumesRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ volumes: (await volumes.list(project_id)).map(volumeView) }, 200);
  });

  app.openapi(showVolumeRoute, async (c) => {
    const { project_id, volume_id } = c.req.valid('param');
    return c.json({ volume: volumeView(await volumes.get(project_id, volume_id)) }, 200);
  });

  app.openapi(deleteVolumeRoute, async (c) => {
    const { project_id, volume_id } = c.req.valid('param');
    await volumes.delete(project_id, volume_id);
    return c.body(null, 204);
  });

  return app;
}

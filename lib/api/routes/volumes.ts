// Volumes (OpenVBS extension): create a sparse image or register an existing one, list, show, delete.
import { createRoute } from '@hono/zod-openapi';
import { GIB } from '../../service/sizes.ts';
import type { VolumeInventory } from '../../volumes/inventory.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, adminResponses, errorResponses, json, jsonBody } from '../schemas.ts';
import { CreateVolumeBody, VolumeListResponse, VolumeParams, VolumeResponse, volumeView } from './volumes.schemas.ts';

const tags = ['Volumes (OpenVBS)'];

const createVolumeRoute = createRoute({
  method: 'post',
  path: '/v2/{project_id}/volumes',
  tags,
  summary: 'Create a sparse image volume, or register an existing image or block device',
  request: { params: ProjectParams, body: jsonBody(CreateVolumeBody) },
  responses: {
    200: json(VolumeResponse, 'The volume'),
    ...errorResponses,
    403: json(ErrorResponse, 'Not an admin token (OpenVBS.0403), or registering this path is not allowed here (OpenVBS.1102)'),
    404: json(ErrorResponse, 'kms_key_id names no key of this project (OpenVBS.1104)'),
    409: json(ErrorResponse, 'Path already registered (OpenVBS.1103), or the key is disabled (OpenVBS.1104)'),
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
    const record =
      'path' in volume
        ? await volumes.register(project_id, { name: volume.name, path: volume.path, ...kms, ...(volume.size_bytes !== undefined ? { sizeBytes: volume.size_bytes } : {}) })
        : await volumes.create(project_id, { name: volume.name, sizeBytes: 'size' in volume ? volume.size * GIB : volume.size_bytes, ...kms });
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

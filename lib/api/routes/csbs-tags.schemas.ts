// CSBS tags on the wire: the path parameters of /csbs_backup/{checkpoint_item_id}/tags… and
// /csbs_backup_policy/{policy_id}/tags…; the bodies and responses are the VBS policy tags' own (same shapes).
import { z } from '@hono/zod-openapi';
import { idParam } from '../schemas.ts';

export { ProjectTagsResponse, ResourceInstancesBody, ResourceInstancesResponse, TagActionBody, TagBody, TagsResponse } from './policies.schemas.ts';

const keyParam = z.string().min(1).max(255).openapi({ param: { name: 'key', in: 'path' } });

export const CheckpointItemTagsParams = z.object({ project_id: idParam('project_id'), checkpoint_item_id: idParam('checkpoint_item_id') });
export const CheckpointItemTagParams = CheckpointItemTagsParams.extend({ key: keyParam });
export const CsbsPolicyTagsParams = z.object({ project_id: idParam('project_id'), policy_id: idParam('policy_id') });
export const CsbsPolicyTagParams = CsbsPolicyTagsParams.extend({ key: keyParam });

/** One resource of a filter's answer (`resource_detail` is always null, as for VBS policies). */
export const resourceInstance = (r: { id: string; name: string; tags: Array<{ key: string; value: string }> }) => ({ resource_id: r.id, resource_name: r.name, resource_detail: null, tags: r.tags });

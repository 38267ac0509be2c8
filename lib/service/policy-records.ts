// What the VBS and CSBS policy services share about the policy records they keep side by side in one
// store: finding a policy of their own kind (another kind's id is a 404, as a missing one), their order in
// a listing, the 404 for a policy that went away meanwhile, and the policy tag rules.
import { PolicyNotFoundError } from '../catalog/policies.ts';
import type { PolicyKind, PolicyRecord, PolicyStore } from '../catalog/policies.ts';
import type { Clock } from '../util/clock.ts';
import { ServiceError, notFound } from './errors.ts';
import { isId } from './ids.ts';
import { ResourceTags } from './resource-tags.ts';

export const policyNotFound = (policyId: string) => notFound(`backup policy ${policyId} not found`);

/** The project's policy of this kind, or the 404. */
export async function policyOfKind(policies: PolicyStore, kind: PolicyKind, projectId: string, policyId: string): Promise<PolicyRecord> {
  if (!isId(projectId) || !isId(policyId)) throw policyNotFound(policyId);
  const policy = await policies.get(projectId, policyId);
  if (!policy || policy.kind !== kind) throw policyNotFound(policyId);
  return policy;
}

/** The project's policies of this kind, oldest first (ties by id): the order every listing shows. */
export async function policiesOfKind(policies: PolicyStore, kind: PolicyKind, projectId: string): Promise<PolicyRecord[]> {
  const own = (await policies.list(projectId)).filter((p) => p.kind === kind);
  return own.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.policyId < b.policyId ? -1 : 1));
}

/** For a store call's rejection: a policy deleted meanwhile becomes its 404; anything else goes on as it was. */
export function rethrowNotFound(policyId: string) {
  return (err: unknown): never => {
    if (err instanceof PolicyNotFoundError) throw policyNotFound(policyId);
    if (err instanceof ServiceError) throw err;
    throw err;
  };
}

/** The tag rules (resource-tags.ts) over the policies of one kind. */
export function policyTagging(policies: PolicyStore, kind: PolicyKind, clock: Clock): ResourceTags<PolicyRecord> {
  return new ResourceTags<PolicyRecord>({
    what: 'backup policy',
    get: (projectId, policyId) => policyOfKind(policies, kind, projectId, policyId),
    list: (projectId) => policiesOfKind(policies, kind, projectId),
    tagsOf: (policy) => policy.tags,
    setTags: async ({ projectId, policyId }, tags) => {
      await policies.update(projectId, policyId, { tags, updatedAt: clock.now().toISOString() }).catch(rethrowNotFound(policyId));
    },
  });
}

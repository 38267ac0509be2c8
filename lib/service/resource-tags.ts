// Tags on a kind of resource (VBS policies, CSBS policies, server backups) as the VBS policy tag API treats
// them: add or set, batch create/update/delete, remove by key, list one resource's, list the project's keys
// with their values, filter and count by tags. One copy of the rules for every kind; each kind says how to
// find, list and store its resources (TaggedKind).
import { distinctTags, TAGS_MAX, validateTags } from './backup-rules.ts';
import type { BackupTag } from './backup-rules.ts';
import { badRequest, notFound } from './errors.ts';
import { checkProjectId } from './ids.ts';

/** OpenStack tag filters: `tags` all match, `tags_any` one matches, `not_tags` not all, `not_tags_any` none. */
export interface TagFilter {
  tags?: Array<{ key: string; values: string[] }>;
  tagsAny?: Array<{ key: string; values: string[] }>;
  notTags?: Array<{ key: string; values: string[] }>;
  notTagsAny?: Array<{ key: string; values: string[] }>;
  limit?: number;
  offset?: number;
}

/** How the tag rules reach one kind of resource. */
export interface TaggedKind<T> {
  /** "backup policy", "server backup": for messages. */
  what: string;
  /** The resource, or the kind's 404 (ServiceError). */
  get(projectId: string, id: string): Promise<T>;
  /** The project's resources, in the order a filter lists them. */
  list(projectId: string): Promise<T[]>;
  tagsOf(item: T): BackupTag[];
  /** Replaces the resource's tags (a 404 when it went away meanwhile). */
  setTags(item: T, tags: BackupTag[]): Promise<void>;
}

/** Does the resource's tag list pass one filter entry (key present, value among `values` when any are listed)? */
const tagMatches = (tags: BackupTag[], f: { key: string; values: string[] }) => tags.some((t) => t.key === f.key && (!f.values.length || f.values.includes(t.value)));

export function matchesTagFilter(tags: BackupTag[], filter: TagFilter): boolean {
  if (filter.tags?.length && !filter.tags.every((f) => tagMatches(tags, f))) return false;
  if (filter.tagsAny?.length && !filter.tagsAny.some((f) => tagMatches(tags, f))) return false;
  if (filter.notTags?.length && filter.notTags.every((f) => tagMatches(tags, f))) return false;
  if (filter.notTagsAny?.length && filter.notTagsAny.some((f) => tagMatches(tags, f))) return false;
  return true;
}

export class ResourceTags<T> {
  private readonly kind: TaggedKind<T>;

  constructor(kind: TaggedKind<T>) {
    this.kind = kind;
  }

  async tags(projectId: string, id: string): Promise<BackupTag[]> {
    return this.kind.tagsOf(await this.kind.get(projectId, id));
  }

  /** Adds tags, or sets the value of keys the resource has already (OpenVBS.1004 past TAGS_MAX or a bad tag). */
  async putTags(projectId: string, id: string, tags: BackupTag[]): Promise<void> {
    const item = await this.kind.get(projectId, id);
    const merged = distinctTags([...this.kind.tagsOf(item), ...tags]);
    if (merged.length > TAGS_MAX) throw badRequest('OpenVBS.1004', `at most ${TAGS_MAX} tags per ${this.kind.what}`);
    validateTags(merged);
    await this.kind.setTags(item, merged);
  }

  /** Removes tags by key (and value, when one is given); a key the resource lacks: 404 in the single (strict) form. */
  async deleteTags(projectId: string, id: string, tags: Array<{ key: string; value?: string }>, options: { strict: boolean }): Promise<void> {
    const item = await this.kind.get(projectId, id);
    const current = this.kind.tagsOf(item);
    const drop = (t: BackupTag) => tags.some((d) => d.key === t.key && (d.value === undefined || d.value === '' || d.value === t.value));
    if (options.strict && !current.some(drop)) throw notFound(`${this.kind.what} ${id} has no tag ${tags[0]?.key}`);
    await this.kind.setTags(item, current.filter((t) => !drop(t)));
  }

  /** Every tag key of the project's resources of this kind with the values it has. */
  async projectTags(projectId: string): Promise<Array<{ key: string; values: string[] }>> {
    checkProjectId(projectId);
    const byKey = new Map<string, Set<string>>();
    for (const item of await this.kind.list(projectId)) {
      for (const t of this.kind.tagsOf(item)) byKey.set(t.key, (byKey.get(t.key) ?? new Set()).add(t.value));
    }
    return [...byKey].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, values]) => ({ key, values: [...values].sort() }));
  }

  /** The project's resources the filter selects (paged), and how many it selects. */
  async filter(projectId: string, filter: TagFilter): Promise<{ total: number; items: T[] }> {
    checkProjectId(projectId);
    const selected = (await this.kind.list(projectId)).filter((item) => matchesTagFilter(this.kind.tagsOf(item), filter));
    const offset = filter.offset ?? 0;
    return { total: selected.length, items: selected.slice(offset, offset + (filter.limit ?? 1000)) };
  }
}

// The VBS rules a backup request must follow (name, description, tags), and how backups sort.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { BackupRecord } from '../engine/ports.ts';
import { badRequest } from './errors.ts';
import { charLength, checkText } from './validation.ts';

export interface BackupTag {
  key: string;
  value: string;
}

export const BACKUP_NAME_MAX = 64;
export const BACKUP_DESCRIPTION_MAX = 255;
export const TAGS_MAX = 10;
export const TAG_KEY_MAX = 36;
export const TAG_VALUE_MAX = 43;

/**
 * The name rules below as one JSON Schema pattern (ECMA-262, with BACKUP_NAME_MAX as maxLength), for the
 * API document: letters, digits, `_` and `-`, not starting with "auto" in any case.
 */
export const BACKUP_NAME_PATTERN = '^(?![Aa][Uu][Tt][Oo])[\\p{L}\\p{N}_-]+$';
/** The description rule as a JSON Schema pattern (with BACKUP_DESCRIPTION_MAX as maxLength). */
export const BACKUP_DESCRIPTION_PATTERN = '^[^<>]*$';

/** What names policy backups get (`autobk_…`): refused to users, as every name starting with `auto`. */
export const POLICY_BACKUP_PREFIX = 'autobk_';

const policyRun = new AsyncLocalStorage<true>();

/**
 * Runs `fn` as a policy run: backup names it creates may start with POLICY_BACKUP_PREFIX (and only with that
 * of the `auto` names). A user's request never runs inside it.
 */
export function asPolicyRun<T>(fn: () => Promise<T>): Promise<T> {
  return policyRun.run(true, fn);
}

export function validateBackupName(name: string): void {
  const length = charLength(name);
  if (length === 0) throw badRequest('VolumeBackup.0004', 'backup name must not be empty');
  if (length > BACKUP_NAME_MAX) throw badRequest('VolumeBackup.0003', `backup name is longer than ${BACKUP_NAME_MAX} characters`);
  if (!/^[\p{L}\p{N}_-]+$/u.test(name)) throw badRequest('VolumeBackup.0004', 'backup name may contain only letters, digits, underscores and hyphens');
  if (name.toLowerCase().startsWith('auto') && !(policyRun.getStore() && name.startsWith(POLICY_BACKUP_PREFIX))) throw badRequest('VolumeBackup.0005', 'backup name must not start with "auto" (reserved for policy backups)');
}

export function validateBackupDescription(description: string | undefined): void {
  checkText(description, 'VolumeBackup.0006', { what: 'backup description', max: BACKUP_DESCRIPTION_MAX, noAngleBrackets: true });
}

export function validateTags(tags: readonly BackupTag[] | undefined): void {
  if (!tags) return;
  if (tags.length > TAGS_MAX) throw badRequest('OpenVBS.1004', `at most ${TAGS_MAX} tags per backup`);
  for (const t of tags) {
    const keyLength = charLength(t.key);
    if (keyLength < 1 || keyLength > TAG_KEY_MAX) throw badRequest('OpenVBS.1004', `tag key must be 1-${TAG_KEY_MAX} characters`);
    if (charLength(t.value) > TAG_VALUE_MAX) throw badRequest('OpenVBS.1004', `tag value must be at most ${TAG_VALUE_MAX} characters`);
  }
}

/** Tags as a map would hold them: each key once, in the order first given, with the last value given for it. */
export function distinctTags(tags: readonly BackupTag[]): BackupTag[] {
  return [...new Map(tags.map((t) => [t.key, t.value])).entries()].map(([key, value]) => ({ key, value }));
}

/** True for a backup taken as part of a server (CSBS) backup: only CSBS may delete it. */
export function isServerBackup(record: BackupRecord): boolean {
  const st = record.extra?.ST;
  return st === 1 || st === '1' || Boolean(record.extra?.serverBackupId);
}

export const BACKUP_SORT_KEYS = ['created_at', 'updated_at', 'name', 'size', 'status', 'id'] as const;
export type BackupSortKey = (typeof BACKUP_SORT_KEYS)[number];

/** Ascending by `key`, ties broken by backup id. */
export function compareBackups(key: BackupSortKey): (a: BackupRecord, b: BackupRecord) => number {
  const value = (r: BackupRecord): string | number => {
    switch (key) {
      case 'name':
        return r.name ?? '';
      case 'size':
        return r.sizeBytes;
      case 'status':
        return r.status;
      case 'id':
        return r.backupId;
      case 'updated_at':
        return r.updatedAt;
      default:
        return r.createdAt;
    }
  };
  return (a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va < vb) return -1;
    if (va > vb) return 1;
    return a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0;
  };
}

// Ids the service accepts and hands out: they appear in paths, table keys and file names.
import { randomUUID } from 'node:crypto';
import { invalidParam } from './errors.ts';

/**
 * Project and resource ids. New backups and jobs get RFC 4122 version 4 UUIDs (as VBS hands out); ids
 * from before that (32 hex digits, or a UUID shape without the version bits) still resolve.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export const isId = (value: string) => ID_PATTERN.test(value);

/** Throws OpenVBS.0400 unless `projectId` is a well-formed id. */
export function checkProjectId(projectId: string): void {
  if (!isId(projectId)) throw invalidParam('invalid project id');
}

export const newJobId = (): string => randomUUID();

export const newBackupId = (): string => randomUUID();

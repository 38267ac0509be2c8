// The contracts between the API, the Step Functions workflows and their Lambda handlers.
// Payloads carry ids only (Step Functions limits a payload to 256 KB; data never travels in them).
// The same zod schemas validate handler input on Lambda and in the local runtime.
import { z } from 'zod';

const id = z.string().min(1).max(128);

/** Input of the volume-backup state machine (written by the API). */
export const VolumeBackupInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  volumeId: id,
  name: z.string().max(255),
  description: z.string().max(255).optional(),
  forceFull: z.boolean().optional(),
  tags: z.array(z.object({ key: z.string(), value: z.string() })).optional(),
});
export type VolumeBackupInput = z.infer<typeof VolumeBackupInput>;

/** Input of the volume-restore state machine. */
export const VolumeRestoreInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  volumeId: id,
});
export type VolumeRestoreInput = z.infer<typeof VolumeRestoreInput>;

/** Input of the backup-delete state machine. */
export const BackupDeleteInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
});
export type BackupDeleteInput = z.infer<typeof BackupDeleteInput>;

/**
 * Input of the server-backup state machine. A server backup is a checkpoint; `backupId` is the checkpoint's id
 * (the failure path and the execution watchdog know every workflow's job by project, job and backup).
 */
export const ServerBackupInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  serverId: id,
});
export type ServerBackupInput = z.infer<typeof ServerBackupInput>;

/** Input of the server-restore state machine: the checkpoint (`backupId`) restored onto the server's disks. */
export const ServerRestoreInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  serverId: id,
  powerOn: z.boolean(),
});
export type ServerRestoreInput = z.infer<typeof ServerRestoreInput>;

/** Input of the checkpoint-delete state machine. */
export const CheckpointDeleteInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
});
export type CheckpointDeleteInput = z.infer<typeof CheckpointDeleteInput>;

/** One disk of a server backup or restore (an iteration of the disks Map): the disk's own job and backup. */
export const DiskTask = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  volumeId: id,
  name: z.string().max(255),
});
export type DiskTask = z.infer<typeof DiskTask>;

/** One Map iteration: a segment of a backup or restore. */
export const SegmentTask = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  volumeId: id,
  segment: z.number().int().min(0),
});
export type SegmentTask = z.infer<typeof SegmentTask>;

/** The failure path's input: the original input plus the caught error (ResultPath $.error). */
export const FailureInput = z.object({
  projectId: id,
  jobId: id,
  backupId: id,
  volumeId: id.optional(),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).passthrough().optional(),
});
export type FailureInput = z.infer<typeof FailureInput>;

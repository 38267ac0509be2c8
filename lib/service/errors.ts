// The one error type the service layer throws for anything a caller did wrong (or that cannot be done
// right now). The API renders it as `{"error":{"code","message"}}` with `httpStatus`; `itemNotFound`
// selects the OpenStack `{"itemNotFound":{"message","code":404}}` shape of the native backup show.
//
// "Not found" has one shape and one code per resource, wherever the id comes from (path or body):
// a volume or a backup answers 404 OpenVBS.0404 in the error shape, a job 404 common.0011 (as VBS
// answers), and only the native backup show answers 404 in the itemNotFound shape (as the reference gives it).
//
// A request that conflicts with the state of a resource that is there (a busy volume, a backup not
// available) answers 409 with the VBS code; one the service refuses for what it says, 400.
//
// Codes: VBS codes where VBS has one (see ../../../shared/reference/vbs-api.md and the VBS error code
// table), `common.0011` for an unknown job (as VBS answers), our own `OpenVBS.xxxx` otherwise:
//   VolumeBackup.0002  400  request body malformed or fails its schema
//   VolumeBackup.0003  400  backup name longer than 64 characters
//   VolumeBackup.0004  400  backup name with characters other than letters, digits, `_`, `-`
//   VolumeBackup.0005  400  backup name starting with `auto` (reserved for policy backups)
//   VolumeBackup.0006  400  backup description too long or containing `<` / `>`
//   VolumeBackup.0012  409  volume not in a status that allows the operation, or busy with a job
//   VolumeBackup.0014  500  the workflow could not be started (submit job exception)
//   VolumeBackup.0089  409  backup not `available` for a restore
//   VolumeBackup.0205  409  restore target volume in `error`
//   VolumeBackup.0209  400  restore target smaller than the backup
//   common.0011        404  job not found
//   OpenVBS.0400       400  invalid path or query parameter
//   OpenVBS.0401       401  missing or unknown X-Auth-Token
//   OpenVBS.0403       403  the token's scope does not reach this route (user tokens: backups, restores, jobs)
//   OpenVBS.0404       404  volume, backup, list marker or route not found (also: another project's resources)
//   OpenVBS.0405       405  method not allowed on this path (the `Allow` header lists the ones that are)
//   OpenVBS.0413       413  request body too large
//   OpenVBS.0415       415  request body without a JSON Content-Type
//   OpenVBS.0500       500  unexpected internal error (details only in the log)
//   OpenVBS.1001       409  backup status does not allow deletion (only `available` / `error`)
//   OpenVBS.1002       409  backup belongs to a server backup (delete it through CSBS)
//   OpenVBS.1003       400  backup quota exceeded (`backups` or `backup_gigabytes`)
//   OpenVBS.1004       400  invalid backup tags
//   OpenVBS.1101       400  volume request invalid (size, path not a file or block device, unreadable)
//   OpenVBS.1005       409  the job cannot be cancelled: it has ended, has not started its workflow yet, or is one
//                           disk of a server job (cancel the server job)
//   OpenVBS.1102       403  registering existing paths is disabled in this deployment (no OPENVBS_VOLUME_ROOTS)
//   OpenVBS.1103       409  the path is already registered as a volume (of any project)
//   OpenVBS.1104       404  the volume's kms_key_id names no key of this project; 409: the key is disabled
//   OpenVBS.1105       409  a volume created from a backup would be smaller than the backup
//   OpenVBS.1201       400  key request invalid (alias format, reserved alias, description)
//   OpenVBS.1202       409  the alias is already in use
//   OpenVBS.1301       400  token request invalid (scope, expiry)
//   OpenVBS.1401       400  server request invalid (name, status, device name, disk count, hooks)
//   OpenVBS.1402       409  a disk cannot be attached or detached (attached elsewhere or twice, not available, device taken, 24 disks)
//   OpenVBS.1403       403  server hooks are disabled in this deployment (no OPENVBS_ALLOW_SERVER_HOOKS=1)
//   OpenVBS.1501       409  server backup or restore: the server is in error
//   OpenVBS.1502       400  server backup: the server has no disks, more than 24, or more than 64 TiB in all
//   OpenVBS.1503       409  server restore: the (local) server is running; stop it first
//   OpenVBS.1504       400  server restore: a target disk is not the server's, is named twice, or a disk backup has no target
//   OpenVBS.1701       400  subscription request invalid (protocol, endpoint), or the endpoint refused by SNS
//   OpenVBS.1702       409  the endpoint already has a subscription (of this project or another)
//   OpenVBS.1703       403  http endpoints are disabled in this deployment (local: OPENVBS_ALLOW_HTTP_WEBHOOKS=1)
//   OpenVBS.1704       400  the project has its maximum of 20 subscriptions
//   OpenVBS.1705       409  the deployment has no notification topic
//   AutoBackup.0225    409  the backup policy is running (execute now while its run is open)
//   VolumeBackup.0202  (in fail_resources) a volume in error cannot join a backup policy
//   OpenVBS.1801       400  backup policy request invalid (a field out of its documented range, time zone, start times)
//   OpenVBS.1802       (in fail_resources) a resource type a VBS policy cannot hold
//   OpenVBS.1803       (in fail_resources) the volume is not in this backup policy
//   OpenVBS.1804       409  a server named by a CSBS policy is already in another policy (a server is in at most one)
//   OpenVBS.1805       409  CSBS execute now: no server of the policy could be backed up now (each one's reason given)
//   OpenVBS.1901       400  share request invalid (to_project_ids empty, more than 10, malformed, or naming the owner)
//   OpenVBS.1902       409  the backup cannot be shared: not available, or a disk backup of a server backup
//   OpenVBS.1903       403  the backup is another project's shared with this one: only its owner may restore it onto an
//                           existing volume, delete, share or unshare it (a new volume can be created from it)
//   OpenVBS.1904       409  the owner's backup is shared with other projects: remove its shares before deleting it
//   OpenVBS.1905       409  the backup is already shared with one of the projects named (nothing was shared)
export class ServiceError extends Error {
  override name = 'ServiceError';
  readonly httpStatus: number;
  readonly code: string;
  /** Render as `{"itemNotFound":{...}}` (native backup show). */
  readonly itemNotFound: boolean;

  constructor(httpStatus: number, code: string, message: string, options: { itemNotFound?: boolean } = {}) {
    super(message);
    this.httpStatus = httpStatus;
    this.code = code;
    this.itemNotFound = options.itemNotFound ?? false;
  }
}

export const badRequest = (code: string, message: string) => new ServiceError(400, code, message);
/** The resource is there, but its state does not allow this now. */
export const conflict = (code: string, message: string) => new ServiceError(409, code, message);
export const notFound = (message: string) => new ServiceError(404, 'OpenVBS.0404', message);
export const volumeNotFound = (volumeId: string) => notFound(`volume ${volumeId} not found`);
export const serverNotFound = (serverId: string) => notFound(`server ${serverId} not found`);
export const backupNotFound = (backupId: string) => notFound(`backup ${backupId} not found`);
/** The native show's answer (OpenStack's `itemNotFound`). */
export const backupItemNotFound = (backupId: string) => new ServiceError(404, 'OpenVBS.0404', `Backup ${backupId} could not be found.`, { itemNotFound: true });
export const jobNotFound = (jobId: string) => new ServiceError(404, 'common.0011', `job ${jobId} not found`);
export const invalidParam = (message: string) => new ServiceError(400, 'OpenVBS.0400', message);
export const unauthorized = (message = 'missing or invalid X-Auth-Token') => new ServiceError(401, 'OpenVBS.0401', message);

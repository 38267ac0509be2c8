// Errors the engine reports to its callers.

/** A restore found a chunk, pack or manifest that is missing or does not verify. */
export class RestoreIntegrityError extends Error {
  override name = 'RestoreIntegrityError';
  readonly backupId: string;
  readonly blockIndex: number;
  readonly pack: string;
  readonly reason: string;

  /** `cause`: the storage error behind it, if any (a transient one makes the restore step worth retrying). */
  constructor(backupId: string, blockIndex: number, pack: string, reason: string, cause?: unknown) {
    super(`restore of backup ${backupId} failed at block ${blockIndex} (pack ${pack}): ${reason}`, cause === undefined ? undefined : { cause });
    this.backupId = backupId;
    this.blockIndex = blockIndex;
    this.pack = pack;
    this.reason = reason;
  }
}

/** The request does not fit the backup or volume (wrong status, target too small...). */
export class EngineStateError extends Error {
  override name = 'EngineStateError';
}

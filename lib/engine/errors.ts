// Errors the engine reports to its callers.

/** A restore found a chunk, pack or manifest that is missing or does not verify. */
export class RestoreIntegrityError extends Error {
  override name = 'RestoreIntegrityError';
  readonly backupId: string;
  readonly blockIndex: number;
  readonly pack: string;
  readonly reason: string;

  constructor(backupId: string, blockIndex: number, pack: string, reason: string) {
    super(`restore of backup ${backupId} failed at block ${blockIndex} (pack ${pack}): ${reason}`);
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

export declare const RESTIC_VERSION: string;
export interface ResticInstall {
  path: string;
  version: string;
  /** How it was installed: the pinned version from its Go module, or Debian's package. */
  source: 'go install' | 'debian';
}
export declare function installRestic(opts?: { quiet?: boolean }): ResticInstall;

// The exit statuses of `openvbs` and the failures the CLI reports itself (the client's ApiError and
// NetworkError are the others).
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/** A failure the CLI reports itself: `code` and `message` for `--json`, `line` for people. */
export class CliError extends Error {
  override name = 'CliError';
  readonly code: string;
  readonly exitCode: number;
  readonly line: string;

  constructor(code: string, message: string, options: { exitCode?: number; line?: string } = {}) {
    super(message);
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_FAILURE;
    this.line = options.line ?? `error: ${message}`;
  }
}

/** A mistake on the command line (or in the settings): exit 2, pointing at the command's help. */
export class UsageError extends CliError {
  override name = 'UsageError';

  /** `helpFor`: the command whose `--help` to point at, e.g. `openvbs backup create`. */
  constructor(message: string, helpFor?: string) {
    super('usage', message, { exitCode: EXIT_USAGE, line: `error: ${message}${helpFor ? ` (see \`${helpFor} --help\`)` : ''}` });
  }
}

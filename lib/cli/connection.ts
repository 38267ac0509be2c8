// Where the CLI finds the service, first match wins: the flags; OPENVBS_URL, OPENVBS_PROJECT and
// OPENVBS_TOKEN; the connection file the local service writes (`$OPENVBS_HOME/connection.json`), so
// that after a restart nothing has to be exported again.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliError, EXIT_USAGE, UsageError } from './errors.ts';

export interface Connection {
  url: string;
  project: string;
  token: string;
}

export interface ConnectionFlags {
  url?: string;
  project?: string;
  token?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** `.openvbs` in the repository: the local service's default home. */
export const DEFAULT_HOME = resolve(import.meta.dirname, '../..', '.openvbs');

export function connectionFilePath(env: Env): string {
  return join(resolve(env.OPENVBS_HOME || DEFAULT_HOME), 'connection.json');
}

const notConfigured = (message: string) => new CliError('not_configured', message, { exitCode: EXIT_USAGE });

/** The connection in the file (`{"url","project_id","token"}`), or undefined when there is no file. */
export function readConnectionFile(path: string): Connection | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw notConfigured(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const { url, project_id: project, token } = (parsed ?? {}) as Record<string, unknown>;
  const usable = (v: unknown): v is string => typeof v === 'string' && v !== '';
  if (!usable(url) || !usable(project) || !usable(token)) {
    throw notConfigured(`${path} is not a connection file: expected {"url", "project_id", "token"}; restart the service or remove it`);
  }
  return { url, project, token };
}

const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/**
 * Each setting from its flag, else its variable. The connection file fills in what is left, but only
 * for the service it describes: its token is never sent to a URL that a flag or variable names.
 */
export function resolveConnection(flags: ConnectionFlags, env: Env): Connection {
  let url = flags.url ?? (env.OPENVBS_URL || undefined);
  let project = flags.project ?? (env.OPENVBS_PROJECT || undefined);
  let token = flags.token ?? (env.OPENVBS_TOKEN || undefined);
  const path = connectionFilePath(env);
  if (!url || !project || !token) {
    const local = readConnectionFile(path);
    if (local && (url === undefined || sameUrl(url, local.url))) {
      url ??= local.url;
      project ??= local.project;
      token ??= local.token;
    }
  }
  if (!url) {
    throw notConfigured(
      `no OpenVBS service found: start one with \`npm start\` or set OPENVBS_URL, OPENVBS_PROJECT and OPENVBS_TOKEN (or --url, --project, --token); there is no ${path}`,
    );
  }
  const missing = [...(project ? [] : ['OPENVBS_PROJECT (or --project)']), ...(token ? [] : ['OPENVBS_TOKEN (or --token)'])];
  if (missing.length) throw notConfigured(`not configured for ${url}: set ${missing.join(', ')}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid server URL "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`invalid server URL "${url}": not http(s)`);
  return { url, project: project as string, token: token as string };
}

// The local runtime's home folder (OPENVBS_HOME): the lock that keeps a second instance out, and the
// connection file that tells the CLI where the service is and how to authenticate.
import { DatabaseSync } from 'node:sqlite';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..', '..');

/** OPENVBS_HOME, or `.openvbs/` in the repository. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.OPENVBS_HOME || join(repoRoot, '.openvbs'));
}

/** Another instance holds the home folder. */
export class HomeLockedError extends Error {
  override name = 'HomeLockedError';
}

export interface HomeLock {
  release(): void;
}

/**
 * Takes the home folder for this process. The lock is an exclusive SQLite transaction on `instance.lock`:
 * the operating system drops it when the process ends, however it ends, so a crash never leaves a stale
 * lock behind and no second instance can take the folder while the first lives.
 */
export async function lockHome(home: string): Promise<HomeLock> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(join(home, 'instance.lock'));
  try {
    db.exec('PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE');
  } catch {
    db.close();
    const owner = await readFile(join(home, 'instance.pid'), 'utf8').catch(() => '');
    throw new HomeLockedError(`another OpenVBS instance${owner.trim() ? ` (pid ${owner.trim()})` : ''} is running on ${home}`);
  }
  await writeFile(join(home, 'instance.pid'), `${process.pid}\n`, { mode: 0o600 });
  return {
    release() {
      db.close();
    },
  };
}

/** What the CLI needs to reach this home's service; `connection.json`, mode 0600. */
export interface Connection {
  url: string;
  project_id: string;
  token: string;
}

export function connectionPath(home: string): string {
  return join(home, 'connection.json');
}

export async function readConnection(home: string): Promise<Connection | undefined> {
  try {
    const parsed = JSON.parse(await readFile(connectionPath(home), 'utf8')) as Partial<Connection>;
    if (typeof parsed.url === 'string' && typeof parsed.project_id === 'string' && typeof parsed.token === 'string') return parsed as Connection;
  } catch {
    // absent or unreadable: a first start
  }
  return undefined;
}

export async function writeConnection(home: string, connection: Connection): Promise<void> {
  const path = connectionPath(home);
  await writeFile(`${path}.tmp`, `${JSON.stringify(connection, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

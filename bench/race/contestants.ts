// The two tools of the race behind one shape: a fresh repository per round on the storage under test, a
// backup of the image file named VOLUME_FILE in a folder, a restore of the latest backup into a folder, and
// the bytes the storage holds. Each phase runs as a child under /usr/bin/time (children.ts).
//   restic:  `restic backup` of the file, `restic restore latest --target`, default compression (auto);
//            a repository in a folder, or `-r s3:<endpoint>/<bucket>` on the emulator.
//   OpenVBS: openvbs-phase.ts bundled to JavaScript as the service is (the engine through openRuntime, all
//            cores); an embedded home (objects as files, catalog and chunk index in SQLite), or the AWS
//            backend on the emulator (S3 bucket, DynamoDB tables, KMS key).
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from '../../scripts/build.mjs';
import type { ServiceConfig } from '../../lib/config.ts';
import type { BackupStats } from '../../lib/engine/ports.ts';
import { run, timedRun } from './children.ts';
import type { ChildTiming } from './children.ts';
import type { S3Side } from './s3.ts';

export const VOLUME_FILE = 'volume.img';

export type StorageKind = 'fs' | 's3';
export const STORAGE_KINDS: readonly StorageKind[] = ['fs', 's3'];

export type ToolName = 'restic' | 'openvbs';

export interface Storage {
  kind: StorageKind;
  /** Present when kind is s3. */
  s3?: S3Side;
}

export interface StorageUse {
  bytes: number;
  objects: number;
  /** OpenVBS on the embedded backend: the rest of its home beside the objects (catalog and chunk index in SQLite, keys). */
  sideBytes?: number;
}

export interface BackupRun {
  timing: ChildTiming;
  id: string;
  parentId: string | null;
  /** What the tool itself says it added: restic's data_added_packed, OpenVBS's stats.storedBytes. */
  reportedBytes: number;
  /** The tool's own account: restic's JSON summary, OpenVBS's backup stats. */
  report: Record<string, unknown> | BackupStats;
}

export interface Repository {
  backup(volumeDir: string, name: string): Promise<BackupRun>;
  /** Restores the latest backup into `targetDir`; resolves to the restored image's path. */
  restore(targetDir: string): Promise<{ timing: ChildTiming; path: string }>;
  use(): Promise<StorageUse>;
  dispose(): Promise<void>;
}

/** `tag` names the round's resources (lower-case letters, digits, dashes); `dir` is the round's scratch folder. */
export type OpenRepository = (storage: Storage, dir: string, tag: string) => Promise<Repository>;

async function folderUse(path: string): Promise<StorageUse> {
  let bytes = 0;
  let objects = 0;
  const walk = async (p: string) => {
    for (const e of await readdir(p, { withFileTypes: true }).catch(() => [])) {
      const child = join(p, e.name);
      if (e.isDirectory()) await walk(child);
      else if (e.isFile()) {
        bytes += (await stat(child)).size;
        objects++;
      }
    }
  };
  await walk(path);
  return { bytes, objects };
}

function s3Of(storage: Storage): S3Side {
  if (!storage.s3) throw new Error('the S3 storage has no emulator');
  return storage.s3;
}

export function resticContestant(bin: string): OpenRepository {
  return async (storage, dir, tag) => {
    const bucket = `restic-${tag}`;
    const repo = storage.kind === 'fs' ? join(dir, 'restic-repo') : `s3:${s3Of(storage).endpoint}/${bucket}`;
    const env = { ...process.env, ...(storage.s3?.env ?? {}), RESTIC_PASSWORD: 'race' };
    const cache = join(dir, 'restic-cache');
    const timeFile = join(dir, 'restic.time');
    const restic = (args: string[]) => ['-r', repo, '--cache-dir', cache, ...args];
    await run(bin, restic(['init', '-q']), { env });
    return {
      async backup(volumeDir) {
        const { stdout, timing } = await timedRun(bin, restic(['backup', '--json', '-q', '--host', 'race', VOLUME_FILE]), timeFile, { cwd: volumeDir, env });
        const summary = stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((m) => m.message_type === 'summary');
        if (!summary) throw new Error(`restic backup printed no summary:\n${stdout.slice(-2000)}`);
        return { timing, id: String(summary.snapshot_id), parentId: null, reportedBytes: Number(summary.data_added_packed), report: summary };
      },
      async restore(targetDir) {
        const { timing } = await timedRun(bin, restic(['restore', 'latest', '--target', targetDir, '-q']), timeFile, { env });
        return { timing, path: join(targetDir, VOLUME_FILE) };
      },
      use: () => (storage.kind === 'fs' ? folderUse(repo) : s3Of(storage).bucketUse(bucket)),
      async dispose() {
        if (storage.kind === 's3') await s3Of(storage).drop(bucket);
        await rm(repo, { recursive: true, force: true });
        await rm(cache, { recursive: true, force: true });
      },
    };
  };
}


export const openvbsContestant: OpenRepository = async (storage, dir, tag) => {
  const home = join(dir, 'openvbs-home');
  const config: ServiceConfig = storage.kind === 'fs' ? { backend: 'embedded', home } : await s3Of(storage).provision(`openvbs-${tag}`);
  const env = { ...process.env, ...(storage.s3?.env ?? {}) };
  const timeFile = join(dir, 'openvbs.time');
  // openvbs-phase.ts bundled as `npm start` bundles the service (scripts/build.mjs): JavaScript, as shipped.
  const phaseRunner = await build('race');
  const node = (args: string[]) => ['--disable-warning=ExperimentalWarning', phaseRunner, JSON.stringify(config), ...args];
  await run(process.execPath, node(['init']), { env });
  let latest: string | undefined;
  return {
    async backup(volumeDir, name) {
      const { stdout, timing } = await timedRun(process.execPath, node(['backup', join(volumeDir, VOLUME_FILE), name]), timeFile, { env });
      const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { backupId: string; parentId: string | null; stats: BackupStats };
      latest = out.backupId;
      return { timing, id: out.backupId, parentId: out.parentId, reportedBytes: out.stats.storedBytes, report: out.stats };
    },
    async restore(targetDir) {
      if (!latest) throw new Error('nothing to restore: no backup yet');
      const path = join(targetDir, VOLUME_FILE);
      const { timing } = await timedRun(process.execPath, node(['restore', latest, path]), timeFile, { env });
      return { timing, path };
    },
    async use() {
      if (config.backend === 'aws') return s3Of(storage).bucketUse(config.bucket);
      const [objects, all] = await Promise.all([folderUse(join(home, 'objects')), folderUse(home)]);
      return { ...objects, sideBytes: all.bytes - objects.bytes };
    },
    async dispose() {
      if (config.backend === 'aws') await s3Of(storage).drop(config.bucket, config);
      await rm(home, { recursive: true, force: true });
    },
  };
};

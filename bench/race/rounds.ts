// One round of one tool on one image and storage: a fresh repository, a full backup of the base image, an
// incremental of the changed copy (same file name, as a user backing up the same disk again), a restore of
// the incremental to a new file, checked by SHA-256 against the changed image. The page cache is dropped
// before each phase; the storage's size is read before and after each backup.
import { link, mkdir, mkdtemp, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sha256File } from '../../test/support/disk-image.ts';
import { dropPageCache, run } from './children.ts';
import type { ChildTiming } from './children.ts';
import { VOLUME_FILE } from './contestants.ts';
import type { BackupRun, OpenRepository, Storage, StorageUse, ToolName } from './contestants.ts';
import type { RaceImage } from './images.ts';

export interface BackupPhase extends BackupRun {
  /** Growth of the storage during this backup. */
  storedBytes: number;
  pageCacheDropped: boolean;
}

export interface RestorePhase {
  timing: ChildTiming;
  /** `sync` right after the tool exits: the restored bytes it left in the page cache reaching the disk. */
  syncS: number;
  sha256Equal: boolean;
  pageCacheDropped: boolean;
}

export interface RoundResult {
  tool: ToolName;
  round: number;
  full: BackupPhase;
  incremental: BackupPhase;
  restore: RestorePhase;
  use: { before: StorageUse; afterFull: StorageUse; afterIncremental: StorageUse };
}

export interface RoundSpec {
  tool: ToolName;
  open: OpenRepository;
  storage: Storage;
  image: RaceImage;
  round: number;
  /** Scratch folder the round's own folder goes into. */
  dir: string;
}

export async function runRound(spec: RoundSpec): Promise<RoundResult> {
  const { tool, storage, image, round } = spec;
  const dir = await mkdtemp(join(spec.dir, `${tool}-`));
  const volumeDir = join(dir, 'volume');
  const volume = join(volumeDir, VOLUME_FILE);
  await mkdir(volumeDir);
  try {
    const repo = await spec.open(storage, dir, `${image.kind}-${storage.kind}-r${round}`);
    try {
      const backup = async (source: string, name: string, usedBefore: StorageUse) => {
        await unlink(volume).catch(() => {});
        await link(source, volume); // a hard link: the same file name for both backups, no copy
        const pageCacheDropped = await dropPageCache();
        const r = await repo.backup(volumeDir, name);
        const after = await repo.use();
        return { phase: { ...r, storedBytes: after.bytes - usedBefore.bytes, pageCacheDropped }, after };
      };
      const before = await repo.use();
      const full = await backup(image.base, 'full', before);
      const incremental = await backup(image.changed, 'incremental', full.after);
      if (tool === 'openvbs' && incremental.phase.parentId !== full.phase.id) throw new Error('OpenVBS: the second backup is not an incremental of the first');

      const target = join(dir, 'restored');
      await mkdir(target);
      const pageCacheDropped = await dropPageCache();
      const restored = await repo.restore(target);
      const t0 = performance.now();
      await run('sync', []);
      const syncS = (performance.now() - t0) / 1000;
      const sha256Equal = (await sha256File(restored.path)) === image.changedSha256;
      await rm(target, { recursive: true, force: true });
      return {
        tool,
        round,
        full: full.phase,
        incremental: incremental.phase,
        restore: { timing: restored.timing, syncS, sha256Equal, pageCacheDropped },
        use: { before, afterFull: full.after, afterIncremental: incremental.after },
      };
    } finally {
      await repo.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

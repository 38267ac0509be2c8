// The race's two images, each as a base and a changed copy (for the incremental):
// - disk: the engine bench's disk-like image (test/support/disk-image.ts), then 4 KiB writes scattered over
//   1% of its 512 KiB blocks;
// - ext4: a real filesystem, `mkfs.ext4 -d` over real files found on this machine, then about 1% of its
//   files changed in place: writes inside files, appends, new files and deletions. Through a loop mount
//   where one works (the kernel's ext4 does the writes, journal and all); otherwise with debugfs: writes go
//   straight to the file's data blocks in the image (found with `blocks`), the rest through rm/write.
// Both are deterministic for a seed (which files, where, which bytes) on a given machine.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { appendFile, copyFile, link, mkdir, mkdtemp, open, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DISK_LIKE_MIX, scatterWrites, writeDiskImage } from '../../test/support/disk-image.ts';
import { f0, f1, mb, MiB } from '../lib/units.ts';
import { StoppingError, run } from './children.ts';

export const BLOCK_SIZE = 512 * 1024;
const PAGE = 4096;
const CHANGE_FRACTION = 0.01;

export type ImageKind = 'disk' | 'ext4';
export const IMAGE_KINDS: readonly ImageKind[] = ['disk', 'ext4'];

export interface BlockDiff {
  blocks: number;
  changedBlocks: number;
  changedPages: number;
}

export interface RaceImage {
  kind: ImageKind;
  label: string;
  sizeBytes: number;
  base: string;
  changed: string;
  changedSha256: string;
  /** How the image and its change were made, one line each. */
  description: string[];
  /** What the change did, for the JSON line. */
  change: Record<string, unknown>;
  diff: BlockDiff;
}

/** xorshift32: the same sequence for the same seed. */
function seeded(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

function shuffle<T>(items: T[], rand: ReturnType<typeof seeded>): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rand.int(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

const copySparse = (from: string, to: string) => run('cp', ['--sparse=always', from, to]);

/** Compares the changed image with the base, in 512 KiB blocks and 4 KiB pages; hashes the changed one. */
async function diffImages(base: string, changed: string, sizeBytes: number): Promise<BlockDiff & { sha256: string }> {
  const hash = createHash('sha256');
  const [a, b] = await Promise.all([open(base, 'r'), open(changed, 'r')]);
  const bufA = Buffer.alloc(16 * BLOCK_SIZE);
  const bufB = Buffer.alloc(16 * BLOCK_SIZE);
  let changedBlocks = 0;
  let changedPages = 0;
  try {
    for (let at = 0; at < sizeBytes; at += bufA.length) {
      const len = Math.min(bufA.length, sizeBytes - at);
      const [ra, rb] = await Promise.all([a.read(bufA, 0, len, at), b.read(bufB, 0, len, at)]);
      if (ra.bytesRead !== len || rb.bytesRead !== len) throw new Error(`short read comparing images at ${at}`);
      hash.update(bufB.subarray(0, len));
      for (let blockAt = 0; blockAt < len; blockAt += BLOCK_SIZE) {
        const end = Math.min(len, blockAt + BLOCK_SIZE);
        if (bufA.subarray(blockAt, end).equals(bufB.subarray(blockAt, end))) continue;
        changedBlocks++;
        for (let p = blockAt; p < end; p += PAGE) {
          const pe = Math.min(end, p + PAGE);
          if (!bufA.subarray(p, pe).equals(bufB.subarray(p, pe))) changedPages++;
        }
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return { blocks: Math.ceil(sizeBytes / BLOCK_SIZE), changedBlocks, changedPages, sha256: hash.digest('hex') };
}

const diffLine = (d: BlockDiff) =>
  `change touched ${d.changedBlocks} of ${d.blocks} 512 KiB blocks (${f1(mb(d.changedBlocks * BLOCK_SIZE))} MB) and ${d.changedPages} 4 KiB pages (${f1(mb(d.changedPages * PAGE))} MB)`;

export async function prepareDiskImage(dir: string, sizeBytes: number, seed: number): Promise<RaceImage> {
  const base = join(dir, 'disk-base.img');
  const changed = join(dir, 'disk-changed.img');
  await writeDiskImage(base, sizeBytes, seed);
  await copySparse(base, changed);
  const written = await scatterWrites(changed, sizeBytes, BLOCK_SIZE, CHANGE_FRACTION, seed + 1);
  const { sha256, ...diff } = await diffImages(base, changed, sizeBytes);
  return {
    kind: 'disk',
    label: `disk-like image, ${f0(sizeBytes / MiB)} MiB`,
    sizeBytes,
    base,
    changed,
    changedSha256: sha256,
    description: [
      `disk-like image of ${f0(sizeBytes / MiB)} MiB, per 1 MiB region ${JSON.stringify(DISK_LIKE_MIX)}, seed ${seed}`,
      `incremental: 4 KiB random writes into ${written.length} of ${diff.blocks} blocks (1%); ${diffLine(diff)}`,
    ],
    change: { writes4KiB: written.length },
    diff,
  };
}

// --- ext4 over real files ---

/** Where real files are taken from, when they exist. */
const REAL_FILE_ROOTS = ['/usr/include', '/usr/bin', '/usr/local/go', '/usr/share', '/opt', '/usr/lib'];

interface RealFile {
  source: string;
  /** Path inside the image, without a leading slash. */
  rel: string;
  size: number;
  symlink: boolean;
}

/** What a file costs the image: its pages; a symlink counts as one page, for its inode and directory entry. */
const allocated = (f: RealFile) => (f.symlink ? PAGE : Math.ceil(f.size / PAGE) * PAGE);

function listRealFiles(root: string): RealFile[] {
  const out: RealFile[] = [];
  const pending = [root];
  while (pending.length) {
    const dirPath = pending.pop()!;
    let entries;
    try {
      entries = readdirSync(dirPath, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const source = join(dirPath, e.name);
      if (e.isDirectory()) pending.push(source);
      else if (e.isFile() || e.isSymbolicLink()) {
        try {
          const st = lstatSync(source);
          out.push({ source, rel: source.slice(1), size: e.isFile() ? st.size : 0, symlink: e.isSymbolicLink() });
        } catch { /* vanished or unreadable */ }
      }
    }
  }
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** A seeded sample of real files filling `budget` bytes (allocated in 4 KiB pages), shared across the roots. */
function chooseRealFiles(budget: number, rand: ReturnType<typeof seeded>): { files: RealFile[]; perRoot: Array<{ root: string; files: number; bytes: number }> } {
  const roots = REAL_FILE_ROOTS.map((root) => ({ root, files: listRealFiles(root) }))
    .filter((r) => r.files.length > 0)
    .map((r) => ({ ...r, total: r.files.reduce((s, f) => s + allocated(f), 0) }))
    .sort((a, b) => a.total - b.total); // smallest first, so what a small root leaves goes to the larger ones
  const files: RealFile[] = [];
  const perRoot: Array<{ root: string; files: number; bytes: number }> = [];
  let left = budget;
  roots.forEach((r, i) => {
    let share = left / (roots.length - i);
    let count = 0;
    let bytes = 0;
    for (const f of shuffle(r.files, rand)) {
      const cost = allocated(f);
      if (cost > share) continue;
      files.push(f);
      share -= cost;
      left -= cost;
      count++;
      bytes += f.size;
    }
    perRoot.push({ root: r.root, files: count, bytes });
  });
  return { files, perRoot };
}

async function stage(files: RealFile[], staging: string): Promise<{ linked: number; copied: number }> {
  const made = new Set<string>();
  let linked = 0;
  let copied = 0;
  for (const f of files) {
    const to = join(staging, f.rel);
    const parent = dirname(to);
    if (!made.has(parent)) {
      await mkdir(parent, { recursive: true });
      made.add(parent);
    }
    if (f.symlink) {
      await symlink(readlinkSync(f.source), to);
      continue;
    }
    try {
      await link(f.source, to); // no copy when the temporary folder is on the same filesystem
      linked++;
    } catch {
      await copyFile(f.source, to);
      copied++;
    }
  }
  return { linked, copied };
}

type Change =
  | { kind: 'write'; file: RealFile; offset: number; data: Buffer }
  | { kind: 'append'; file: RealFile; data: Buffer }
  | { kind: 'create'; rel: string; data: Buffer }
  | { kind: 'delete'; file: RealFile };

/** Bytes of real files (random ones, at random offsets) as the new content of writes, appends and new files. */
async function donorBytes(files: RealFile[], length: number, rand: ReturnType<typeof seeded>): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let filled = 0;
  for (let tries = 0; filled < length && tries < 64; tries++) {
    const f = files[rand.int(files.length)]!;
    const want = Math.min(length - filled, f.size);
    const fh = await open(f.source, 'r');
    try {
      const { bytesRead } = await fh.read(out, filled, want, rand.int(f.size - want + 1));
      filled += bytesRead;
    } finally {
      await fh.close();
    }
  }
  return out;
}

const between = (rand: ReturnType<typeof seeded>, lo: number, hi: number) => lo + rand.int(hi - lo + 1);

/** About 1% of the image's files: 55% written in place, 20% appended to, 15% new files beside them, 10% deleted. */
async function planChanges(files: RealFile[], rand: ReturnType<typeof seeded>): Promise<Change[]> {
  // Names debugfs can take unquoted; the same choice whichever way the change is applied.
  const candidates = shuffle(files.filter((f) => !f.symlink && f.size > 0 && /^[\w.+@,/-]+$/.test(f.rel)), rand);
  const count = Math.max(4, Math.round(CHANGE_FRACTION * files.filter((f) => !f.symlink).length));
  const changes: Change[] = [];
  for (let i = 0; i < count && i < candidates.length; i++) {
    const file = candidates[i]!;
    const share = i / count;
    if (share < 0.55) {
      const len = Math.min(file.size, between(rand, 1, 16) * PAGE);
      changes.push({ kind: 'write', file, offset: rand.int(file.size - len + 1), data: await donorBytes(candidates, len, rand) });
    } else if (share < 0.75) {
      changes.push({ kind: 'append', file, data: await donorBytes(candidates, between(rand, 1, 64) * PAGE, rand) });
    } else if (share < 0.9) {
      changes.push({ kind: 'create', rel: `${file.rel}.race-new-${i}`, data: await donorBytes(candidates, between(rand, 1, 256) * PAGE, rand) });
    } else {
      changes.push({ kind: 'delete', file });
    }
  }
  return changes;
}

function summarize(changes: Change[]) {
  const sum = (kind: Change['kind']) => {
    const of = changes.filter((c) => c.kind === kind);
    const bytes = of.reduce((s, c) => s + ('data' in c ? c.data.length : c.file.size), 0);
    return { files: of.length, bytes };
  };
  return { written: sum('write'), appended: sum('append'), created: sum('create'), deleted: sum('delete') };
}

const mounts = new Set<string>();

/** Unmounts whatever the race left mounted (a failure or SIGINT while changing the ext4 image). */
export async function releaseMounts(): Promise<void> {
  for (const mnt of mounts) await run('umount', ['-l', mnt], { cleanup: true }).catch(() => {});
  mounts.clear();
}

async function applyMounted(image: string, mnt: string, changes: Change[]): Promise<void> {
  await mkdir(mnt, { recursive: true });
  await run('mount', ['-o', 'loop', image, mnt]);
  mounts.add(mnt);
  try {
    for (const c of changes) {
      if (c.kind === 'write') {
        const fh = await open(join(mnt, c.file.rel), 'r+');
        try {
          await fh.write(c.data, 0, c.data.length, c.offset);
        } finally {
          await fh.close();
        }
      } else if (c.kind === 'append') await appendFile(join(mnt, c.file.rel), c.data);
      else if (c.kind === 'create') await writeFile(join(mnt, c.rel), c.data);
      else await unlink(join(mnt, c.file.rel));
    }
  } finally {
    await run('umount', [mnt], { cleanup: true });
    mounts.delete(mnt);
  }
}

/** debugfs -f: each command is echoed as "debugfs: <command>", its output follows. */
function outputsPerCommand(stdout: string): string[] {
  const outputs: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('debugfs: ')) outputs.push('');
    else if (outputs.length) outputs[outputs.length - 1] += line + '\n';
  }
  return outputs;
}

async function debugfs(image: string, commands: string[], scratch: string, write: boolean): Promise<string> {
  const script = join(scratch, 'debugfs.cmd');
  await writeFile(script, commands.join('\n') + '\n');
  const { stdout, stderr } = await run('debugfs', [...(write ? ['-w'] : []), '-f', script, image]);
  const errors = stderr.split('\n').filter((l) => l.trim() && !l.startsWith('debugfs '));
  if (errors.length) throw new Error(`debugfs: ${errors.slice(0, 5).join('; ')}`);
  return stdout;
}

/**
 * Without a loop mount: writes inside files go straight to their data blocks in the image (in place, as
 * the kernel would), with the file's mtime set by debugfs; appends rewrite the file (rm + write: new
 * blocks, as an editor that saves a new copy); new files with write; deletions with rm.
 * Returns the writes that could not be placed (files with holes or inline data).
 */
async function applyDebugfs(image: string, scratch: string, changes: Change[]): Promise<number> {
  const writes = changes.filter((c) => c.kind === 'write');
  const blockLists = outputsPerCommand(await debugfs(image, writes.map((c) => `blocks /${c.file.rel}`), scratch, false));
  const commands: string[] = [];
  let skipped = 0;
  const fh = await open(image, 'r+');
  try {
    for (const [k, c] of writes.entries()) {
      const blocks = (blockLists[k] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
      if (blocks.length !== Math.ceil(c.file.size / PAGE)) {
        skipped++;
        continue;
      }
      for (let at = 0; at < c.data.length; ) {
        const pos = c.offset + at;
        const len = Math.min(c.data.length - at, PAGE - (pos % PAGE));
        await fh.write(c.data, at, len, blocks[Math.floor(pos / PAGE)]! * PAGE + (pos % PAGE));
        at += len;
      }
      commands.push(`sif /${c.file.rel} mtime 20260101000000`);
    }
  } finally {
    await fh.close();
  }
  let n = 0;
  const local = async (data: Buffer) => {
    const path = join(scratch, `new-${n++}`);
    await writeFile(path, data);
    return path;
  };
  for (const c of changes) {
    if (c.kind === 'append') {
      const whole = Buffer.concat([await readFile(c.file.source), c.data]);
      commands.push(`rm /${c.file.rel}`, `cd /${dirname(c.file.rel)}`, `write ${await local(whole)} ${c.file.rel.split('/').at(-1)}`, 'cd /');
    } else if (c.kind === 'create') {
      commands.push(`cd /${dirname(c.rel)}`, `write ${await local(c.data)} ${c.rel.split('/').at(-1)}`, 'cd /');
    } else if (c.kind === 'delete') commands.push(`rm /${c.file.rel}`);
  }
  await debugfs(image, commands, scratch, true);
  return skipped;
}

export type Ext4ChangeMethod = 'auto' | 'mount' | 'debugfs';

async function loopMountWorks(dir: string): Promise<boolean> {
  const probe = join(dir, 'probe.img');
  const mnt = join(dir, 'probe-mnt');
  try {
    await writeFile(probe, '');
    await run('truncate', ['-s', '16M', probe]);
    await run('mkfs.ext4', ['-q', '-F', probe]);
    await mkdir(mnt);
    await run('mount', ['-o', 'loop', probe, mnt]);
    await run('umount', [mnt]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
    await rm(mnt, { recursive: true, force: true });
  }
}

export async function prepareExt4Image(dir: string, sizeBytes: number, seed: number, method: Ext4ChangeMethod, log: (line: string) => void): Promise<RaceImage> {
  const rand = seeded(seed);
  const base = join(dir, 'ext4-base.img');
  const changed = join(dir, 'ext4-changed.img');
  const staging = join(dir, 'ext4-staging');
  const budget = Math.floor(0.75 * sizeBytes);
  log(`  ext4: choosing ~${f0(budget / MiB)} MiB of real files from ${REAL_FILE_ROOTS.join(', ')}...`);
  const { files, perRoot } = chooseRealFiles(budget, rand);
  const regular = files.filter((f) => !f.symlink);
  const fileBytes = regular.reduce((s, f) => s + f.size, 0);
  const staged = await stage(files, staging);
  log(`  ext4: mkfs.ext4 -d over ${regular.length} files (${f0(mb(fileBytes))} MB) and ${files.length - regular.length} symlinks...`);
  const uuid = '6f70656e-7662-4072-8163-650000000000';
  await writeFile(base, '');
  await run('truncate', ['-s', String(sizeBytes), base]);
  await run('mkfs.ext4', ['-q', '-F', '-b', String(PAGE), '-L', 'race', '-U', uuid, '-E', `hash_seed=${uuid}`, '-d', staging, base], {
    env: { ...process.env, E2FSPROGS_FAKE_TIME: '1767225600' },
  });
  await rm(staging, { recursive: true, force: true });

  await copySparse(base, changed);
  const changes = await planChanges(files, rand);
  const mountable = method !== 'debugfs' && (await loopMountWorks(dir));
  if (method === 'mount' && !mountable) throw new Error('BENCH_EXT4_CHANGE=mount, but mount -o loop does not work here');
  const scratch = await mkdtemp(join(dir, 'ext4-change-'));
  let skipped = 0;
  try {
    if (mountable) await applyMounted(changed, join(scratch, 'mnt'), changes);
    else skipped = await applyDebugfs(changed, scratch, changes);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const fsck = await run('e2fsck', ['-fn', changed]).then(
    () => 'clean',
    (err: Error) => {
      if (err instanceof StoppingError) throw err;
      return `NOT clean: ${err.message.split('\n').slice(1, 4).join('; ')}`;
    },
  );
  const summary = summarize(changes);
  const { sha256, ...diff } = await diffImages(base, changed, sizeBytes);
  const how = mountable
    ? 'through a loop mount (mount -o loop; the kernel\'s ext4 wrote data, metadata and journal)'
    : `with debugfs -w (${method === 'debugfs' ? 'as BENCH_EXT4_CHANGE asks' : 'mount -o loop does not work here'}): writes straight into the files' data blocks + sif mtime, appends as rm + write of the longer file, new files with write, deletions with rm${skipped ? `; ${skipped} writes skipped (files with holes or inline data)` : ''}`;
  const part = (name: string, s: { files: number; bytes: number }) => `${s.files} ${name} (${f1(mb(s.bytes))} MB)`;
  return {
    kind: 'ext4',
    label: `ext4 image of real files, ${f0(sizeBytes / MiB)} MiB`,
    sizeBytes,
    base,
    changed,
    changedSha256: sha256,
    description: [
      `ext4 image of ${f0(sizeBytes / MiB)} MiB (mkfs.ext4 -b 4096 -d): ${regular.length} real files, ${f0(mb(fileBytes))} MB, and ${files.length - regular.length} symlinks, seed ${seed}, ` +
        `staged by ${staged.linked ? 'hard links' : 'copies'}; from ${perRoot.map((r) => `${r.root} ${r.files} files ${f0(mb(r.bytes))} MB`).join(', ')}`,
      `incremental: ${changes.length} files changed ${how}: ${part('written in place', summary.written)}, ${part('appended to', summary.appended)}, ` +
        `${part('new', summary.created)}, ${part('deleted', summary.deleted)}; e2fsck -fn ${fsck}`,
      diffLine(diff),
    ],
    change: { method: mountable ? 'loop mount' : 'debugfs', files: regular.length, fileBytes, symlinks: files.length - regular.length, perRoot, ...summary, skippedWrites: skipped, fsck },
    diff,
  };
}

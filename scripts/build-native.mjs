#!/usr/bin/env node
// Builds the native helpers under native/ into .cache/native/ with the system C compiler (`cc`, or $CC).
// Run by `npm install` (postinstall) and by the tests that need a helper. Without a compiler, or when the
// build fails, it says in one line what that costs and exits 0: the service still works, reading holes of
// sparse images as data.
//   node scripts/build-native.mjs
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NATIVE_DIR = join(root, '.cache', 'native');
export const SEEKMAP = join(NATIVE_DIR, 'seekmap');

const mtime = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
};

/** Builds seekmap unless it is newer than its source. Returns its path, or undefined when it cannot be built. */
export function buildNative({ quiet = false } = {}) {
  const source = join(root, 'native', 'seekmap.c');
  if (mtime(SEEKMAP) >= mtime(source)) return SEEKMAP;
  mkdirSync(NATIVE_DIR, { recursive: true });
  const tmp = `${SEEKMAP}.${process.pid}.tmp`;
  const cc = process.env.CC || 'cc';
  try {
    execFileSync(cc, ['-O2', '-Wall', '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, SEEKMAP);
    return SEEKMAP;
  } catch (err) {
    rmSync(tmp, { force: true });
    const why = err.code === 'ENOENT' ? `no C compiler (${cc})` : `${cc} failed: ${String(err.stderr ?? err.message).trim().split('\n')[0]}`;
    if (!quiet) console.log(`openvbs: native helper not built (${why}); holes of sparse images will be read as data`);
    return undefined;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) buildNative();

// Bundles a process entry point of OpenVBS into JavaScript, as the Lambda functions are bundled
// (infra/constructs/functions.ts): one ES module per entry, the chunk worker beside it as chunk-worker.mjs,
// shared code and lazily imported parts (the AWS SDK on the embedded backend) in chunks of their own.
//   node scripts/build.mjs [name]   -> dist/<name>/ (default: every bundle in BUNDLES)
//
// Why: running the TypeScript sources strips their types at load time, in every thread. Measured here with
// the race's phase runner on the embedded backend: it starts in 0.05 s at 69 MB resident against 0.16 s at
// 107 MB from the sources; a chunk worker takes 14 MB against 35 MB; the local service starts at 209 MB
// against 267-281 MB. Full backups and restores of the 2 GiB disk-like image took 5-15% less time.
//
// The bundles sit two folders below the repository root, as the sources in lib/<area>/ do: a few paths are
// found from the module's own folder (the native helper in .cache/native, the default home), and they
// resolve the same way from dist/<name>/. Files are written only when their bytes change, each by a rename,
// so a process starting from dist/ while another builds never reads half a file.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { ESBUILD_BANNER } from '../infra/esbuild-banner.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const CHUNK_WORKER = 'lib/engine/chunk-worker.ts';
/** How bundles are made is an input of each too. */
const BUILD_SCRIPT = relative(ROOT, import.meta.filename);

/** Every bundle `npm start` and the benches run, by name: its entry point (relative to the repository root). */
export const BUNDLES = {
  service: 'lib/local/main.ts',
  race: 'bench/race/openvbs-phase.ts',
};

/** Beside a bundle: every source file it was built from, with its modification time. */
const INPUTS_FILE = 'inputs.json';

function modifiedAt(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * True when no file the bundle was built from changed since: esbuild takes seconds over the AWS SDK's
 * thousands of modules, a start should not. A new import needs an edit to a file already there, so the
 * recorded inputs suffice.
 */
function upToDate(inputsFile) {
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(inputsFile, 'utf8'));
  } catch {
    return false;
  }
  return Object.entries(inputs).every(([input, mtime]) => modifiedAt(join(ROOT, input)) === mtime);
}

function replaceFile(path, contents) {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(temp, contents);
  renameSync(temp, path);
}

/** The file a bundle's entry is written to. */
export function bundleEntry(name) {
  return join(ROOT, 'dist', name, `${basename(BUNDLES[name], '.ts')}.mjs`);
}

/** Builds bundle `name` into dist/<name>/; resolves to its entry file. Outputs that did not change are left alone. */
export async function build(name) {
  const entry = BUNDLES[name];
  if (!entry) throw new Error(`no bundle named ${name}; known: ${Object.keys(BUNDLES).join(', ')}`);
  const outdir = join(ROOT, 'dist', name);
  const inputsFile = join(outdir, INPUTS_FILE);
  if (upToDate(inputsFile)) return bundleEntry(name);
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { [basename(entry, '.ts')]: entry, 'chunk-worker': CHUNK_WORKER },
    outdir,
    // Chunks stay in the bundle's own folder: module-relative paths resolve as they do from the entry.
    chunkNames: '[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    // ES builds first: they tree-shake (the AWS SDK's CommonJS build is one file per client, every command in it).
    mainFields: ['module', 'main'],
    // The local service synthesizes the stack for its workflows (infra/synth.ts): the CDK loads from
    // node_modules as it does from the sources, lazily, instead of 57 MB of it in the bundle.
    external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', 'cdk-nag'],
    format: 'esm',
    target: 'node22',
    banner: { js: ESBUILD_BANNER },
    sourcemap: 'linked',
    logLevel: 'warning',
    // lib/policies/schedule.ts reads rrule's exports from either build on purpose.
    logOverride: { 'import-is-undefined': 'silent' },
    metafile: true,
    write: false,
  });
  // esbuild's service process would otherwise live as long as this one (the service, when `npm start` builds).
  await esbuild.stop();
  mkdirSync(outdir, { recursive: true });
  const written = new Set();
  for (const file of result.outputFiles) {
    written.add(file.path);
    if (existsSync(file.path) && readFileSync(file.path).equals(file.contents)) continue;
    replaceFile(file.path, file.contents);
  }
  const inputs = Object.fromEntries([...Object.keys(result.metafile.inputs), BUILD_SCRIPT].map((input) => [input, modifiedAt(join(ROOT, input))]));
  replaceFile(inputsFile, Buffer.from(JSON.stringify(inputs)));
  written.add(inputsFile);
  // Chunks of an earlier build (their names carry a hash of their content).
  for (const old of readdirSync(outdir)) {
    const path = join(outdir, old);
    if (!written.has(path) && !old.startsWith('.')) rmSync(path, { force: true });
  }
  return bundleEntry(name);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(BUNDLES);
  for (const name of names) console.log(`built ${relative(ROOT, await build(name))}`);
}

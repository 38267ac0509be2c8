// node bench/check.ts [dir] — `check --read-data` MB/s next to the restore of the same backup, embedded backend.
//
// Writes a disk-like image (BENCH_SIZE_MIB, default 1024; BENCH_SEED, default 2026) into <dir> (default a
// temporary folder, removed afterwards) and backs it up once, unless <dir> holds both from an earlier run. Then,
// in this order, each timed alone: a restore to a new sparse image; a metadata-only check; a check with
// --read-data. The packs are in the page cache for all three (the backup just wrote them, or the run before
// read them), so the figures compare CPU paths, not the disk. Chunk workers: all cores (OPENVBS_CHUNK_WORKERS
// overrides). Prints one line per operation, then the figures as JSON.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runBackup } from '../lib/engine/backup.ts';
import { checkRepository } from '../lib/engine/check.ts';
import { restoreBackup } from '../lib/engine/restore.ts';
import { FileVolumeProvider } from '../lib/volumes/file-provider.ts';
import { chunkWorkersFromEnv } from '../lib/wiring/engine.ts';
import { openRuntime } from '../lib/wiring/runtime.ts';
import { writeDiskImage } from '../test/support/disk-image.ts';

const MiB = 1024 * 1024;
const PROJECT = 'bench';
const given = process.argv[2];
const dir = given ?? (await mkdtemp(join(tmpdir(), 'openvbs-bench-check-')));
const paths = { source: join(dir, 'source.img'), restored: join(dir, 'restored.img'), home: join(dir, 'home'), backupId: join(dir, 'backup-id') };
const sizeBytes = Math.round(Number(process.env.BENCH_SIZE_MIB ?? 1024) * MiB);

const files = new Map([['src', paths.source], ['dst', paths.restored]]);
const workers = chunkWorkersFromEnv();
const runtime = await openRuntime(
  { backend: 'embedded', home: paths.home },
  { volumes: new FileVolumeProvider(async (_project, id) => (files.has(id) ? { path: files.get(id)! } : undefined)), ...(workers !== undefined ? { workers } : {}) },
);
const deps = runtime.taskDeps().engine;

const mb = (bytes: number) => bytes / 1e6;
const line = (what: string, seconds: number, bytes: number, extra = '') =>
  console.log(`${what.padEnd(22)} ${seconds.toFixed(2).padStart(6)} s  ${mb(bytes).toFixed(0).padStart(6)} MB  ${(mb(bytes) / seconds).toFixed(0).padStart(5)} MB/s${extra}`);

try {
  let backupId: string;
  if (existsSync(paths.backupId) && existsSync(paths.source)) backupId = (await readFile(paths.backupId, 'utf8')).trim();
  else {
    await writeDiskImage(paths.source, sizeBytes, Number(process.env.BENCH_SEED ?? 2026));
    const started = performance.now();
    const rec = await runBackup(deps, { projectId: PROJECT, volumeId: 'src', name: 'bench' });
    line('backup', (performance.now() - started) / 1000, rec.sizeBytes, ` (${mb(rec.stats!.storedBytes).toFixed(0)} MB stored)`);
    backupId = rec.backupId;
    await writeFile(paths.backupId, backupId);
  }
  const rec = (await deps.catalog.getBackup(PROJECT, backupId))!;
  let packBytes = 0;
  let packs = 0;
  for await (const obj of deps.store.list(`packs/${rec.domainId}/`)) {
    packBytes += obj.size;
    packs++;
  }
  console.log(`backup ${backupId}: ${mb(rec.sizeBytes).toFixed(0)} MB volume, ${mb(rec.stats!.logicalBytes).toFixed(0)} MB of data, ${packs} packs of ${mb(packBytes).toFixed(0)} MB; ${deps.pool.size} chunk workers`);

  const dataRate = (seconds: number) => `${(mb(rec.stats!.logicalBytes) / seconds).toFixed(0)} MB/s of data`;
  let started = performance.now();
  let restoreSeconds = 0;
  // BENCH_SKIP_RESTORE=1: the check alone, so the peak RSS printed at the end is the check's.
  if (process.env.BENCH_SKIP_RESTORE !== '1') {
    await rm(paths.restored, { force: true });
    const restored = await restoreBackup(deps, { projectId: PROJECT, backupId, targetVolumeId: 'dst' });
    restoreSeconds = (performance.now() - started) / 1000;
    line('restore (sealed in)', restoreSeconds, packBytes, `  (${dataRate(restoreSeconds)}; ${mb(restored.bytesWritten).toFixed(0)} MB written)`);
  }

  const backups = runtime.stores.backups;
  started = performance.now();
  const meta = await checkRepository({ engine: deps, backups }, { projectIds: [PROJECT] });
  const metaSeconds = (performance.now() - started) / 1000;
  console.log(`${'check (metadata)'.padEnd(22)} ${metaSeconds.toFixed(2).padStart(6)} s  ${meta.manifests} manifests, ${meta.chunks} chunks, ${meta.packs} pack headers; ok=${meta.ok}`);

  started = performance.now();
  const data = await checkRepository({ engine: deps, backups }, { projectIds: [PROJECT], readDataPercent: 100 });
  const dataSeconds = (performance.now() - started) / 1000;
  line('check --read-data', dataSeconds, data.bytesRead, `  (${dataRate(dataSeconds)}; data pass alone ${data.readSeconds.toFixed(2)} s, ${data.readMBps.toFixed(0)} MB/s; ${data.chunksRead} chunks; ok=${data.ok})`);

  const peakRss = process.resourceUsage().maxRSS * 1024;
  console.log(`peak RSS of the process: ${mb(peakRss).toFixed(0)} MB`);
  console.log(
    JSON.stringify({
      peakRss,
      sizeBytes: rec.sizeBytes,
      packBytes,
      workers: deps.pool.size,
      logicalBytes: rec.stats!.logicalBytes,
      ...(restoreSeconds ? { restore: { seconds: restoreSeconds, sealedMBps: mb(packBytes) / restoreSeconds } } : {}),
      checkMetadata: { seconds: metaSeconds },
      checkReadData: { seconds: dataSeconds, bytesRead: data.bytesRead, MBps: mb(data.bytesRead) / dataSeconds, dataPassMBps: data.readMBps },
    }),
  );
} finally {
  await runtime.close();
  if (!given) await rm(dir, { recursive: true, force: true });
}

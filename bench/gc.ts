// node bench/gc.ts [entries...] — garbage collection's mark and sweep against the number of chunk index
// entries of one key domain (embedded backend: SQLite index, file objects), one process per size so each
// peak RSS is that size's alone. Default sizes: 100,000, 300,000 and 1,000,000 entries.
//
// Per size: N random chunk ids are recorded in the index (N / 256 fictitious packs), and one `available`
// backup whose manifests name half of them (version-2 manifests of 65,536 chunk-table entries, no blocks).
// Then two runs: the first marks the unreferenced half, the second (the clock moved past the margin)
// deletes it. Prints, per run, mark and sweep time, and the process's peak RSS (the kernel's high-water mark)
// next to the RSS of the runtime before GC (generation runs in a process of its own); then all as JSON.
//
// BENCH_LIVE_BUDGET=<ids> lowers the live set's budget to show the passes it then takes.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHUNK_ID_BYTES } from '../lib/engine/chunk-codec.ts';
import { DAY_MS, runGc } from '../lib/engine/gc.ts';
import type { GcReport } from '../lib/engine/gc.ts';
import { emptyStats, encodeManifest, manifestKey } from '../lib/engine/manifest.ts';
import { ManualClock } from '../lib/util/clock.ts';
import { openRuntime } from '../lib/wiring/runtime.ts';

const PER_MANIFEST = 65_536;
const PER_PACK = 256;
const MB = 1e6;

/** Writes the index entries, manifests and backup item into the home under `dir`. */
async function generate(dir: string, entries: number): Promise<Record<string, number>> {
  const runtime = await openRuntime({ backend: 'embedded', home: join(dir, 'home') }, { workers: 0 });
  try {
    const tasks = runtime.taskDeps();
    const { engine } = tasks;
    const domain = await engine.domains.forVolume('bench', undefined);
    const genStart = performance.now();
    // Ids in batches: recorded in the index; every other batch's ids named by the backup's manifests.
    const backupId = '00000000-0000-0000-0000-000000000001';
    const prefix = `manifests/bench/${backupId}/`;
    let segment = 0;
    let live = 0;
    for (let done = 0; done < entries; ) {
      const n = Math.min(PER_MANIFEST, entries - done);
      const ids = randomBytes(n * CHUNK_ID_BYTES);
      const records = [];
      for (let k = 0; k < n; k++) {
        const pack = `packs/${domain.domainId}/00/${String(Math.floor((done + k) / PER_PACK)).padStart(32, '0')}`;
        records.push({ id: ids.subarray(k * CHUNK_ID_BYTES, (k + 1) * CHUNK_ID_BYTES).toString('hex'), location: { pack, offset: ((done + k) % PER_PACK) * 1000, length: 1000 } });
      }
      await engine.index.record(domain.domainId, records);
      // Half of the ids are live: the first half of each batch.
      const named = Math.floor(n / 2);
      const manifest = encodeManifest(domain.keys, backupId, segment, {
        firstBlock: 0,
        blockCount: 0,
        stats: emptyStats(),
        blockSize: 512 * 1024,
        subChunkSize: 64 * 1024,
        chunkIds: ids.subarray(0, named * CHUNK_ID_BYTES),
        chunkLengths: new Uint32Array(named).fill(65_536),
        fingerprints: Buffer.alloc(0),
        pieces: [],
      });
      await engine.store.put(manifestKey(prefix, segment), manifest);
      live += named;
      segment++;
      done += n;
    }
    const now = new Date().toISOString();
    await engine.catalog.createBackup({
      projectId: 'bench', backupId, volumeId: 'vol', name: 'bench', status: 'available', sizeBytes: 0, blockSize: 512 * 1024, segmentBlocks: 2048,
      segmentCount: segment, subChunkSize: 64 * 1024, extentBlocks: 8, domainId: domain.domainId, kmsKeyId: domain.kmsKeyId, customerKey: false,
      createdAt: now, updatedAt: now, manifestPrefix: prefix,
    });
    return { entries, live, manifests: segment, genSeconds: (performance.now() - genStart) / 1000 };
  } finally {
    await runtime.close();
  }
}

/** Two GC runs over the home under `dir`, in a process that did nothing else. */
async function collect(dir: string, entries: number, live: number): Promise<Record<string, number>> {
  const runtime = await openRuntime({ backend: 'embedded', home: join(dir, 'home') }, { workers: 0 });
  try {
    const tasks = runtime.taskDeps();
    const { engine } = tasks;
    const rssBefore = process.memoryUsage().rss;
    const clock = new ManualClock('2030-01-01T00:00:00Z');
    const budget = process.env.BENCH_LIVE_BUDGET ? { liveIdBudget: Number(process.env.BENCH_LIVE_BUDGET) } : {};
    const gc = { store: engine.store, index: engine.index, backups: tasks.backups, gcQueue: tasks.gcQueue, domains: engine.domains };
    const runs: GcReport[] = [];
    for (let r = 0; r < 2; r++) {
      runs.push(await runGc(gc, { clock, ...budget }));
      clock.advance(DAY_MS + 1);
    }
    const peakRss = process.resourceUsage().maxRSS * 1024;
    if (runs[0]!.entriesMarked !== entries - live || runs[1]!.indexEntriesDeleted !== entries - live) throw new Error(`bench: expected ${entries - live} marked and deleted, got ${runs[0]!.entriesMarked} and ${runs[1]!.indexEntriesDeleted}`);
    return {
      passes: runs[0]!.passes,
      liveSetMB: runs[0]!.liveSetBytes / MB,
      mark1: runs[0]!.markMs / 1000,
      sweep1: runs[0]!.sweepMs / 1000,
      mark2: runs[1]!.markMs / 1000,
      sweep2: runs[1]!.sweepMs / 1000,
      rssBeforeMB: rssBefore / MB,
      peakRssMB: peakRss / MB,
    };
  } finally {
    await runtime.close();
  }
}

const child = (args: string[]) => {
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', process.argv[1]!, ...args], { encoding: 'utf8', env: process.env });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
};

if (process.argv[2] === '--generate') {
  console.log(JSON.stringify(await generate(process.argv[3]!, Number(process.argv[4]))));
} else if (process.argv[2] === '--collect') {
  console.log(JSON.stringify(await collect(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]))));
} else {
  const sizes = process.argv.slice(2).map(Number);
  const rows: Array<Record<string, number>> = [];
  for (const n of sizes.length ? sizes : [100_000, 300_000, 1_000_000]) {
    const dir = await mkdtemp(join(tmpdir(), 'openvbs-bench-gc-'));
    let row: Record<string, number>;
    try {
      const made = child(['--generate', dir, String(n)]);
      row = { ...made, ...child(['--collect', dir, String(n), String(made.live)]) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    rows.push(row);
    const f = (x: number) => x.toFixed(2);
    console.log(
      `${String(row.entries).padStart(9)} entries (${row.live} live, ${row.manifests} manifests, ${row.passes} pass(es), live set ${f(row.liveSetMB!)} MB): ` +
        `run 1 (marks) mark ${f(row.mark1!)} s sweep ${f(row.sweep1!)} s; run 2 (deletes) mark ${f(row.mark2!)} s sweep ${f(row.sweep2!)} s; ` +
        `RSS of the opened runtime ${row.rssBeforeMB!.toFixed(0)} MB, peak ${row.peakRssMB!.toFixed(0)} MB`,
    );
  }
  console.log(JSON.stringify(rows));
}

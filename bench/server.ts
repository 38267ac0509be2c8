// node bench/server.ts — server backups (CSBS) on the local runtime, embedded backend: a server of 4 disks of
// 1 GiB of disk-like data each; a full server backup, an incremental after 1% scattered writes per disk, and a
// server restore, with the disks Map at concurrency 1 and 4. Prints wall time, MB/s of disk data and the freeze
// window (how long the server's writers were held by the group snapshot). BENCH_DISK_MIB and BENCH_DISKS
// change the geometry; BENCH_HOOKS=1 gives the server freeze/thaw hooks (`true`), so the snapshot is a
// consistent copy made while the writers are held.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalService } from '../lib/local/service.ts';
import type { LocalService } from '../lib/local/service.ts';
import { createServices } from '../lib/service/factory.ts';
import type { Services } from '../lib/service/factory.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../test/support/disk-image.ts';

const diskBytes = Number(process.env.BENCH_DISK_MIB ?? 1024) * 2 ** 20;
const diskCount = Number(process.env.BENCH_DISKS ?? 4);
const withHooks = process.env.BENCH_HOOKS === '1';
const mbps = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
const settle = () => execFileSync('sync');

async function waitJob(svc: LocalService, jobId: string) {
  for (;;) {
    const job = await svc.runtime.stores.jobs.get(svc.projectId, jobId);
    if (job?.status === 'SUCCESS' || job?.status === 'FAIL') return job;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; result: T }> {
  settle();
  const start = performance.now();
  const result = await run();
  return { ms: performance.now() - start, result };
}

async function protect(svc: LocalService, services: Services, serverId: string, name: string) {
  const checkpoint = await services.serverBackups.protect(svc.projectId, serverId, { name });
  const job = await waitJob(svc, checkpoint.jobId);
  if (job.status !== 'SUCCESS') throw new Error(`server backup ${name} failed: ${job.failReason}`);
  return (await svc.runtime.stores.checkpoints.get(svc.projectId, checkpoint.checkpointId))!;
}

async function benchConcurrency(diskConcurrency: number) {
  const home = await mkdtemp(join(tmpdir(), 'openvbs-bench-server-'));
  const svc = await startLocalService({ backend: 'embedded', port: 0, home, diskConcurrency });
  try {
    const services = createServices({ stores: svc.runtime.stores, keys: svc.runtime.backend.keys, workflows: svc.workflows, provider: svc.runtime.volumes, dataDir: home });
    const volumes = [];
    for (let i = 0; i < diskCount; i++) {
      const volume = await services.volumes.create(svc.projectId, { name: `disk${i}`, sizeBytes: diskBytes });
      await writeDiskImage(volume.path, diskBytes, 300 + i);
      volumes.push(volume);
    }
    const server = await services.servers.create(svc.projectId, { name: 'bench', status: 'running', disks: volumes.map((v) => ({ volumeId: v.volumeId })) });
    if (withHooks) await services.servers.setHooks(svc.projectId, server.serverId, { freeze: ['/bin/true'], thaw: ['/bin/true'] });
    const sums = await Promise.all(volumes.map((v) => sha256File(v.path)));
    const total = diskBytes * diskCount;

    const full = await timed(() => protect(svc, services, server.serverId, 'full'));
    for (const [i, v] of volumes.entries()) await scatterWrites(v.path, diskBytes, 4096, 0.01, 500 + i);
    const incremental = await timed(() => protect(svc, services, server.serverId, 'incremental'));
    await services.servers.stop(svc.projectId, server.serverId);
    const restore = await timed(async () => {
      const started = await services.serverBackups.restore(svc.projectId, { checkpointId: full.result.checkpointId, powerOn: false });
      const job = await waitJob(svc, started.jobId);
      if (job.status !== 'SUCCESS') throw new Error(`server restore failed: ${job.failReason}`);
    });
    const exact = (await Promise.all(volumes.map((v) => sha256File(v.path)))).every((h, i) => h === sums[i]);
    const row = (phase: string, ms: number, snapshot?: { method: string; freezeMs: number; crashConsistent: boolean }) =>
      `  ${phase.padEnd(12)} ${(ms / 1000).toFixed(2).padStart(7)} s ${mbps(total, ms).padStart(6)} MB/s${snapshot ? `   snapshot ${snapshot.method}, writers held ${snapshot.freezeMs} ms, crash-consistent ${snapshot.crashConsistent}` : ''}`;
    console.log(`disk concurrency ${diskConcurrency}:`);
    console.log(row('full', full.ms, full.result.snapshot));
    console.log(row('incremental', incremental.ms, incremental.result.snapshot));
    console.log(row('restore', restore.ms));
    console.log(`  restore bit-exact: ${exact}`);
    return { full: full.ms, incremental: incremental.ms, restore: restore.ms };
  } finally {
    await svc.stop();
    await rm(home, { recursive: true, force: true });
  }
}

console.log(`server of ${diskCount} disks x ${diskBytes / 2 ** 20} MiB disk-like data, embedded backend, ${cpus().length} cores, ${withHooks ? 'freeze hooks' : 'no hooks'}`);
const one = await benchConcurrency(1);
const four = await benchConcurrency(4);
console.log(`speed-up 4 vs 1: full ${(one.full / four.full).toFixed(2)}x, incremental ${(one.incremental / four.incremental).toFixed(2)}x, restore ${(one.restore / four.restore).toFixed(2)}x (on ${cpus().length} cores)`);

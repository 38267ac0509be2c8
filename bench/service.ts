// npm run bench:service — a 1 GiB disk-like volume backed up and restored through the REST API on the
// local runtime (state machines, handlers, catalog, jobs), against the engine alone on the same image,
// on each backend (BENCH_BACKENDS, default "embedded,aws"). Prints MB/s (10^6 B/s) for both and the
// orchestration overhead. BENCH_SIZE_MIB changes the size. With the AWS backend each side gets an
// emulator of its own, so neither pays for the other's data in it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients } from '../lib/aws/clients.ts';
import type { BackendKind, ServiceConfig } from '../lib/config.ts';
import { runBackup } from '../lib/engine/backup.ts';
import { restoreBackup } from '../lib/engine/restore.ts';
import { provisionLocalResources } from '../lib/local/provision.ts';
import { startLocalService } from '../lib/local/service.ts';
import { FileVolumeProvider } from '../lib/volumes/file-provider.ts';
import { openRuntime } from '../lib/wiring/runtime.ts';
import { startMoto } from '../scripts/moto.mjs';
import { DISK_LIKE_MIX, sha256File, writeDiskImage } from '../test/support/disk-image.ts';

const sizeBytes = Number(process.env.BENCH_SIZE_MIB ?? 1024) * 1024 * 1024;
const backends = (process.env.BENCH_BACKENDS ?? 'embedded,aws').split(',') as BackendKind[];
/**
 * Flushes dirty pages before each timed phase: a restore writes a whole volume, and one that starts
 * while the kernel is still writing back the previous gigabyte is throttled (measured: the same
 * restore took 4.1 s after another restore and 1.7 s right after it, run to run).
 */
const settle = () => execFileSync('sync');
const mbps = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

/** An emulator for the AWS backend (stopped by the caller), nothing for the embedded one. */
async function emulatorFor(backend: BackendKind) {
  if (backend !== 'aws') return undefined;
  const moto = await startMoto({ quiet: true });
  process.env.AWS_ENDPOINT_URL = moto.endpoint;
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  return moto;
}

async function configFor(backend: BackendKind, home: string): Promise<ServiceConfig> {
  return backend === 'embedded' ? { backend, home } : provisionLocalResources(createClients(), `be${randomBytes(4).toString('hex')}`);
}

const dir = await mkdtemp(join(tmpdir(), 'openvbs-bench-service-'));
process.env.OPENVBS_VOLUME_ROOTS = dir; // the source image is registered by path
try {
  const image = join(dir, 'source.img');
  console.log(`image: ${(sizeBytes / 2 ** 20).toFixed(0)} MiB disk-like ${JSON.stringify(DISK_LIKE_MIX)}`);
  await writeDiskImage(image, sizeBytes, 2026);
  const sourceSha = await sha256File(image);
  for (const backend of backends) await benchBackend(backend, image, sourceSha);
} finally {
  await rm(dir, { recursive: true, force: true });
}

async function benchBackend(backend: BackendKind, image: string, sourceSha: string) {
  // Engine alone, in-process, on its own resources.
  let moto = await emulatorFor(backend);
  const files = new Map([['src', image], ['dst', join(dir, `engine-restore-${backend}.img`)]]);
  const runtime = await openRuntime(await configFor(backend, join(dir, `engine-home-${backend}`)), {
    volumes: new FileVolumeProvider(async (_p, id) => (files.has(id) ? { path: files.get(id)! } : undefined)),
  });
  const deps = runtime.taskDeps().engine;
  settle();
  let t = performance.now();
  const engineBackup = await runBackup(deps, { projectId: 'bench', volumeId: 'src', name: 'engine' });
  const engineBackupMs = performance.now() - t;
  settle();
  t = performance.now();
  await restoreBackup(deps, { projectId: 'bench', backupId: engineBackup.backupId, targetVolumeId: 'dst' });
  const engineRestoreMs = performance.now() - t;
  if ((await sha256File(files.get('dst')!)) !== sourceSha) throw new Error('engine restore differs from the source');
  await runtime.close();
  await rm(files.get('dst')!, { force: true });
  await moto?.stop();
  moto = await emulatorFor(backend);

  // The service: REST API -> state machine -> handlers, jobs polled like a client would.
  const svc = await startLocalService({ backend, port: 0, home: join(dir, `service-home-${backend}`), prefix: `bs${randomBytes(4).toString('hex')}` });
  // The few response fields this script reads.
  type Reply = { job_id: string; status: string; fail_reason?: string; end_time?: string; entities: Record<string, string>; volume: { id: string; path: string } };
  const call = async (method: string, path: string, body?: unknown): Promise<Reply> => {
    const res = await fetch(`${svc.url}${path}`, {
      method,
      headers: { 'X-Auth-Token': svc.token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Reply;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const waitJob = async (jobId: string) => {
    for (;;) {
      const job = await call('GET', `/v1/${svc.projectId}/jobs/${jobId}`);
      if (job.status === 'SUCCESS') return job;
      if (job.status === 'FAIL') throw new Error(`job failed: ${job.fail_reason}`);
      // A client polls from elsewhere; here it shares the process (and moto) with the service, so it
      // polls gently and the time is taken from the job's own end_time, not from when a poll saw it.
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  try {
    const p = `/v2/${svc.projectId}`;
    const vol = (await call('POST', `${p}/volumes`, { volume: { name: 'bench-src', path: image } })).volume;
    const target = (await call('POST', `${p}/volumes`, { volume: { name: 'bench-dst', size_bytes: sizeBytes } })).volume;
    settle();
    let started = Date.now();
    const backupJob = await waitJob((await call('POST', `${p}/cloudbackups`, { backup: { volume_id: vol.id, name: 'bench' } })).job_id);
    const apiBackupMs = Date.parse(backupJob.end_time!) - started;
    settle();
    started = Date.now();
    const restoreJob = await waitJob((await call('POST', `${p}/cloudbackups/${backupJob.entities.backup_id}/restore`, { restore: { volume_id: target.id } })).job_id);
    const apiRestoreMs = Date.parse(restoreJob.end_time!) - started;
    if ((await sha256File(target.path)) !== sourceSha) throw new Error('service restore differs from the source');

    const rows = [
      ['backup', engineBackupMs, apiBackupMs],
      ['restore', engineRestoreMs, apiRestoreMs],
    ] as const;
    console.log(`${backend} backend`);
    console.log('stage     engine MB/s   service MB/s   orchestration overhead');
    for (const [stage, engineMs, apiMs] of rows) {
      console.log(`${stage.padEnd(9)} ${mbps(sizeBytes, engineMs).padStart(11)}   ${mbps(sizeBytes, apiMs).padStart(12)}   ${(((apiMs - engineMs) / engineMs) * 100).toFixed(1).padStart(6)} %`);
    }
    console.log(JSON.stringify({ backend, sizeBytes, engineBackupMs, apiBackupMs, engineRestoreMs, apiRestoreMs }));
  } finally {
    await svc.stop();
    await moto?.stop();
  }
}

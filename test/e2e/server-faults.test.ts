// The fault-injection matrix for the server workflows, on the local runtime (embedded backend) through the real
// API: for every step of the server backup, the server restore and the checkpoint delete (the disks' own volume
// steps included), a permanent and a transient error; the failure paths failing themselves; storage errors;
// and a cancel of a running server backup and restore. After each cell the job has ended as it should, every
// disk is free, no checkpoint or disk backup is `available` with anything missing (each available checkpoint
// restores bit-exact onto a fresh server), and the server takes a new backup. The run prints the matrix.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { FaultyObjectStore } from '../support/memory-ports.ts';
import { StepFaults, s3Fault } from '../support/step-faults.ts';
import type { StepFault } from '../support/step-faults.ts';
import { apiCall } from '../support/api-call.ts';

const MiB = 1024 * 1024;
const SIZES = [4 * MiB, 6 * MiB];

const faults = new StepFaults();
const stepFaults = faults.planned;
const gates = faults.gates;
let store: FaultyObjectStore;

let svc: LocalService;
let home: string;
const matrix: Array<{ workflow: string; step: string; fault: string; outcome: string }> = [];
const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
const v1 = (path: string) => `/v1/${svc.projectId}${path}`;

interface Job {
  status: string;
  fail_reason: string | null;
  entities: Record<string, string>;
  sub_jobs: Job[];
}
const jobOf = async (jobId: string) => (await api('GET', v1(`/jobs/${jobId}`))).body as Job;
async function settled(jobId: string) {
  await svc.workflows.idle();
  return jobOf(jobId);
}

let server: { id: string; disks: Array<{ id: string; path: string }> };
const restoredOnce = new Set<string>();
let sums: string[];

async function newServer(name: string, status: 'running' | 'stopped') {
  const disks = [];
  for (const [i, size] of SIZES.entries()) {
    const res = await api('POST', `/v2/${svc.projectId}/volumes`, { volume: { name: `${name}-${i}`, size_bytes: size } });
    expect(res.status).toBe(200);
    disks.push(res.body.volume as { id: string; path: string });
  }
  const res = await api('POST', v1('/servers'), { server: { name, status, disks: disks.map((d) => ({ volume_id: d.id })) } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.server.id as string, disks };
}

/** The server backup's job: found through the checkpoint's entities (CSBS answers with the checkpoint). */
async function protect(name: string) {
  const res = await api('POST', v1(`/providers/${CSBS_PROVIDER_ID}/resources/${server.id}/action`), { protect: { backup_name: name } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return jobIdOfCheckpoint(res.body.checkpoint.id);
}
async function jobIdOfCheckpoint(checkpointId: string): Promise<string> {
  const checkpoint = await svc.runtime.stores.checkpoints.get(svc.projectId, checkpointId);
  return checkpoint!.jobId;
}
async function restoreOnto(checkpointId: string, target: { id: string }) {
  const res = await api('POST', v1('/restores'), { restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: checkpointId, parameters: { power_on: false, targets: { server_id: target.id } } } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.restore.id as string;
}
async function removeCheckpoint(checkpointId: string) {
  const before = new Set((await svc.runtime.stores.jobs.list(svc.projectId)).map((j) => j.jobId));
  const res = await api('DELETE', v1(`/providers/${CSBS_PROVIDER_ID}/checkpoints/${checkpointId}`));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const job = (await svc.runtime.stores.jobs.list(svc.projectId)).find((j) => !before.has(j.jobId) && j.jobType === 'bksDeleteServerBackup')!;
  return job.jobId;
}
const checkpoints = async () => svc.runtime.stores.checkpoints.list(svc.projectId);

/** Every checkpoint is available (restores bit-exact) or error (no disk backup of it available); disks free; a new backup works. */
async function checkInvariants(cell: string) {
  for (const c of await checkpoints()) {
    expect(['available', 'error'], `${cell}: checkpoint ${c.checkpointId}`).toContain(c.status);
    const backups = await Promise.all(c.disks.map((d) => svc.runtime.stores.backups.getBackup(svc.projectId, d.backupId)));
    if (c.status === 'error') {
      for (const b of backups) if (b) expect(b.status, `${cell}: a disk backup of failed checkpoint ${c.checkpointId}`).toBe('error');
      continue;
    }
    for (const b of backups) expect(b?.status, `${cell}: a disk backup of checkpoint ${c.checkpointId}`).toBe('available');
    // An available checkpoint stays as it is: restoring it once, when it first appears, is enough.
    if (restoredOnce.has(c.checkpointId)) continue;
    restoredOnce.add(c.checkpointId);
    const target = await newServer(`check-${c.checkpointId.slice(0, 6)}`, 'stopped');
    const job = await settled(await restoreOnto(c.checkpointId, target));
    expect(job.status, `${cell}: restore of ${c.checkpointId}: ${job.fail_reason}`).toBe('SUCCESS');
    expect(await Promise.all(target.disks.map((d, i) => sha256File(d.path, SIZES[i]))), `${cell}: restore of ${c.checkpointId}`).toEqual(sums);
  }
  for (const d of server.disks) expect((await api('GET', `/v2/${svc.projectId}/volumes/${d.id}`)).body.volume.status, cell).toMatch(/^(available|in-use)$/);
  const next = await settled(await protect(`after${matrix.length}`));
  expect(next.status, `${cell}: the next backup: ${next.fail_reason}`).toBe('SUCCESS');
  const extra = (await checkpoints()).find((c) => c.name === `after${matrix.length}`)!;
  expect((await settled(await removeCheckpoint(extra.checkpointId))).status).toBe('SUCCESS');
}

beforeAll(async () => {
  process.env.OPENVBS_SEGMENT_BLOCKS = '4'; // 2 MiB segments: a few segment steps per disk
  home = await mkdtemp(join(tmpdir(), 'openvbs-server-faults-'));
  svc = await startLocalService({
    port: 0,
    home,
    backend: 'embedded',
    workers: 1,
    prefix: `sf${randomBytes(3).toString('hex')}`,
    wrapHandler: faults.wrapHandler,
    wrapStore: (s: ObjectStore) => (store = new FaultyObjectStore(s)),
  });
  server = await newServer('source', 'stopped');
  for (const [i, d] of server.disks.entries()) await writeDiskImage(d.path, SIZES[i]!, 90 + i, { zero: 0.2, text: 0.4, random: 0.4, copy: 0 });
  sums = await Promise.all(server.disks.map((d) => sha256File(d.path)));
  expect((await settled(await protect('baseline'))).status).toBe('SUCCESS');
});

afterAll(async () => {
  await svc?.stop();
  await rm(home, { recursive: true, force: true });
  if (matrix.length) {
    console.log(['server fault-injection matrix (workflow / step / fault -> outcome):', ...matrix.map((m) => `  ${m.workflow.padEnd(17)} ${m.step.padEnd(22)} ${m.fault.padEnd(22)} ${m.outcome}`)].join('\n'));
  }
});

type Workflow = 'server-backup' | 'server-restore' | 'checkpoint-delete';
const steps: Record<Workflow, HandlerName[]> = {
  'server-backup': ['server-backup-prepare', 'backup-prepare', 'backup-segment', 'backup-commit', 'server-backup-commit', 'notify'],
  'server-restore': ['server-restore-prepare', 'restore-prepare', 'restore-segment', 'restore-commit', 'server-restore-commit', 'notify'],
  'checkpoint-delete': ['delete-checkpoint', 'notify'],
};
const STEP_CELLS = Object.entries(steps).flatMap(([workflow, names]) =>
  names.flatMap((step) => [
    { workflow: workflow as Workflow, step, fault: 'permanent' as StepFault, expected: step === 'notify' ? 'SUCCESS' : 'FAIL' },
    { workflow: workflow as Workflow, step, fault: 'transient' as StepFault, expected: 'SUCCESS' },
  ]),
);

async function runWorkflow(workflow: Workflow): Promise<Job> {
  if (workflow === 'server-backup') return settled(await protect(`cell${matrix.length}`));
  const baseline = (await checkpoints()).find((c) => c.name === 'baseline')!;
  if (workflow === 'server-restore') return settled(await restoreOnto(baseline.checkpointId, await newServer(`cell${matrix.length}`, 'stopped')));
  const made = await settled(await protect(`doomed${matrix.length}`));
  expect(made.status).toBe('SUCCESS');
  const doomed = (await checkpoints()).find((c) => c.name === `doomed${matrix.length}`)!;
  return settled(await removeCheckpoint(doomed.checkpointId));
}

const record = (workflow: string, step: string, fault: string, ended: Job) =>
  matrix.push({ workflow, step, fault, outcome: `${ended.status}${ended.fail_reason ? ` (${ended.fail_reason.slice(0, 90)})` : ''}` });

describe('server fault-injection matrix (embedded backend)', () => {
  it.each(STEP_CELLS)('$workflow: $fault error in $step -> job $expected', async ({ workflow, step, fault, expected }) => {
    stepFaults.clear();
    stepFaults.set(step, { fault, left: fault === 'transient' ? 1 : 50 });
    const ended = await runWorkflow(workflow);
    stepFaults.clear();
    record(workflow, step, fault, ended);
    expect(ended.status, ended.fail_reason ?? '').toBe(expected);
    if (expected === 'FAIL') expect(ended.fail_reason).toContain(`injected: ${step}`);
    await checkInvariants(`${workflow}/${step}/${fault}`);
  });

  it.each([
    ['server-backup-fail', 'server-backup', 'backup-segment'],
    ['server-restore-fail', 'server-restore', 'restore-segment'],
    ['delete-checkpoint-fail', 'checkpoint-delete', 'delete-checkpoint'],
  ] as const)('the failure path itself (%s) failing still ends the job FAIL and puts everything back', async (failStep, workflow, failing) => {
    stepFaults.clear();
    stepFaults.set(failing, { fault: 'permanent', left: 50 });
    stepFaults.set(failStep, { fault: 'permanent', left: 50 });
    const ended = await runWorkflow(workflow);
    stepFaults.clear();
    record(workflow, failStep, 'permanent (and cause)', ended);
    expect(ended.status).toBe('FAIL');
    await checkInvariants(`${workflow}/${failStep}`);
  });

  it.each([
    { workflow: 'server-backup', method: 'put', fault: 'storage 503 once', error: s3Fault(503, 'SlowDown'), call: 1, expected: 'SUCCESS' },
    { workflow: 'server-backup', method: 'put', fault: 'storage 403', error: s3Fault(403, 'AccessDenied'), call: undefined, expected: 'FAIL' },
    { workflow: 'server-restore', method: 'getRange', fault: 'storage 503 once', error: s3Fault(503, 'SlowDown'), call: 1, expected: 'SUCCESS' },
    { workflow: 'server-restore', method: 'getRange', fault: 'storage 403', error: s3Fault(403, 'AccessDenied'), call: undefined, expected: 'FAIL' },
  ] as const)('$workflow: $fault on $method -> job $expected', async ({ workflow, method, fault, error, call, expected }) => {
    store.clearFaults();
    store.failOn({ method, error, ...(call ? { call } : {}) });
    const ended = await runWorkflow(workflow);
    store.clearFaults();
    record(workflow, `store.${method}`, fault, ended);
    expect(ended.status, ended.fail_reason ?? '').toBe(expected);
    await checkInvariants(`${workflow}/${method}/${fault}`);
  });

  it.each(['server-backup', 'server-restore'] as const)('cancels a running %s: job FAIL "cancelled", every disk job ended, nothing half-made available', async (workflow) => {
    // The disks' segments wait until the cancel is in: the job is surely running when it comes.
    stepFaults.clear();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const segmentStep: HandlerName = workflow === 'server-backup' ? 'backup-segment' : 'restore-segment';
    gates.set(segmentStep, gate);
    let jobId: string;
    if (workflow === 'server-backup') jobId = await protect(`cancelled${matrix.length}`);
    else jobId = await restoreOnto((await checkpoints()).find((c) => c.name === 'baseline')!.checkpointId, await newServer(`cancel${matrix.length}`, 'stopped'));
    for (let i = 0; i < 200 && (await jobOf(jobId)).status !== 'RUNNING'; i++) await new Promise((r) => setTimeout(r, 20));
    // The cancel waits for the execution to stop, which waits for the held segments: let them go once it is sent.
    const cancelling = api('POST', v1(`/jobs/${jobId}/cancel`));
    await new Promise((r) => setTimeout(r, 200));
    gates.delete(segmentStep);
    release();
    const res = await cancelling;
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const ended = await settled(jobId);
    record(workflow, 'cancel', 'while running', ended);
    expect(ended).toMatchObject({ status: 'FAIL', fail_reason: 'cancelled' });
    for (const sub of ended.sub_jobs) expect(sub.status).toBe('FAIL');
    await checkInvariants(`${workflow}/cancel`);
  });
});

// The fault-injection matrix, on the local runtime (embedded backend) through the real API: for every step
// of every workflow, a permanent error, a transient one, and storage errors; after each cell the job has
// ended as it should, no backup is `available` with anything missing (every available backup restores
// bit-exact), and the volume takes a new backup. The run prints the matrix. (A process killed at any point
// is covered by test/e2e/restart.test.ts.)
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../lib/engine/ports.ts';
import { startLocalService } from '../../lib/local/service.ts';
import type { LocalService } from '../../lib/local/service.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { sha256File, writeDiskImage } from '../support/disk-image.ts';
import { FaultyObjectStore } from '../support/memory-ports.ts';
import { StepFaults, s3Fault } from '../support/step-faults.ts';
import type { StepFault } from '../support/step-faults.ts';
import { apiCall } from '../support/api-call.ts';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

const faults = new StepFaults();
const stepFaults = faults.planned;
let store: FaultyObjectStore;

let svc: LocalService;
let home: string;
const matrix: Array<{ workflow: string; step: string; fault: string; outcome: string }> = [];

const api = (method: string, path: string, body?: unknown) => apiCall(svc.url, svc.token, method, path, body);
const p = () => svc.projectId;
async function job(start: Promise<{ body: { job_id: string } }>) {
  const jobId = (await start).body.job_id;
  await svc.workflows.idle();
  return (await api('GET', `/v1/${p()}/jobs/${jobId}`)).body as { status: string; fail_reason: string | null; entities: Record<string, string> };
}
const backup = (volumeId: string, name: string) => job(api('POST', `/v2/${p()}/cloudbackups`, { backup: { volume_id: volumeId, name } }));
const restore = (backupId: string, volumeId: string) => job(api('POST', `/v2/${p()}/cloudbackups/${backupId}/restore`, { restore: { volume_id: volumeId } }));
const remove = (backupId: string) => job(api('POST', `/v2/${p()}/cloudbackups/${backupId}`));
const newVolume = async (name: string) => (await api('POST', `/v2/${p()}/volumes`, { volume: { name, size_bytes: SIZE } })).body.volume as { id: string; path: string };

let source: { id: string; path: string };
let sourceSha: string;

/** Every available backup of the source restores bit-exact, and the source takes a new backup. */
async function checkInvariants(cell: string) {
  const all = (await api('GET', `/v2/${p()}/backups/detail?volume_id=${source.id}`)).body.backups as Array<{ id: string; status: string }>;
  for (const b of all) expect(['available', 'error'], `${cell}: backup ${b.id}`).toContain(b.status);
  for (const b of all.filter((x) => x.status === 'available')) {
    const target = await newVolume(`check-${b.id.slice(0, 8)}`);
    const restored = await restore(b.id, target.id);
    expect(restored.status, `${cell}: restore of ${b.id}: ${restored.fail_reason}`).toBe('SUCCESS');
    expect(await sha256File(target.path), `${cell}: restore of ${b.id}`).toBe(sourceSha);
    await api('DELETE', `/v2/${p()}/volumes/${target.id}`);
  }
  expect((await api('GET', `/v2/${p()}/volumes/${source.id}`)).body.volume.status, cell).toBe('available');
  const next = await backup(source.id, `after-${matrix.length}`);
  expect(next.status, `${cell}: the next backup: ${next.fail_reason}`).toBe('SUCCESS');
  // keep the catalog small: drop that extra backup again
  expect((await remove(next.entities.backup_id!)).status).toBe('SUCCESS');
}

beforeAll(async () => {
  process.env.OPENVBS_SEGMENT_BLOCKS = '4'; // 2 MiB segments: 4 segment steps per job
  home = await mkdtemp(join(tmpdir(), 'openvbs-faults-'));
  svc = await startLocalService({
    port: 0,
    home,
    backend: 'embedded',
    workers: 1,
    prefix: `f${randomBytes(3).toString('hex')}`,
    wrapHandler: faults.wrapHandler,
    wrapStore: (s: ObjectStore) => (store = new FaultyObjectStore(s)),
  });
  source = await newVolume('source');
  await writeDiskImage(source.path, SIZE, 77, { zero: 0.2, text: 0.4, random: 0.4, copy: 0 });
  sourceSha = await sha256File(source.path);
  expect((await backup(source.id, 'baseline')).status).toBe('SUCCESS');
});

afterAll(async () => {
  await svc?.stop();
  await rm(home, { recursive: true, force: true });
  if (matrix.length) {
    console.log(['fault-injection matrix (workflow / step / fault -> outcome):', ...matrix.map((m) => `  ${m.workflow.padEnd(14)} ${m.step.padEnd(16)} ${m.fault.padEnd(22)} ${m.outcome}`)].join('\n'));
  }
});

type Cell = { workflow: 'volume-backup' | 'volume-restore' | 'backup-delete'; step: HandlerName; fault: StepFault; expected: 'SUCCESS' | 'FAIL' };

// A step's permanent error fails the job (its failure path runs); a transient one is retried and the job
// succeeds; a notification that fails never fails the job.
const STEP_CELLS: Cell[] = [];
const steps: Record<Cell['workflow'], HandlerName[]> = {
  'volume-backup': ['backup-prepare', 'backup-segment', 'backup-commit', 'notify'],
  'volume-restore': ['restore-prepare', 'restore-segment', 'restore-commit', 'notify'],
  'backup-delete': ['delete-backup', 'notify'],
};
for (const [workflow, names] of Object.entries(steps) as Array<[Cell['workflow'], HandlerName[]]>) {
  for (const step of names) {
    STEP_CELLS.push({ workflow, step, fault: 'permanent', expected: step === 'notify' ? 'SUCCESS' : 'FAIL' });
    STEP_CELLS.push({ workflow, step, fault: 'transient', expected: 'SUCCESS' });
  }
}

async function runWorkflow(workflow: Cell['workflow']) {
  if (workflow === 'volume-backup') return backup(source.id, `cell-${matrix.length}`);
  const { body } = await api('GET', `/v2/${p()}/backups/detail?volume_id=${source.id}&status=available`);
  const base = (body.backups as Array<{ id: string; name: string }>).find((b) => b.name === 'baseline')!;
  if (workflow === 'volume-restore') return restore(base.id, (await newVolume(`cell-${matrix.length}`)).id);
  const made = await backup(source.id, `doomed-${matrix.length}`);
  expect(made.status).toBe('SUCCESS');
  return remove(made.entities.backup_id!);
}

describe('fault-injection matrix (embedded backend)', () => {
  it.each(STEP_CELLS)('$workflow: $fault error in $step -> job $expected', async ({ workflow, step, fault, expected }) => {
    stepFaults.clear();
    stepFaults.set(step, { fault, left: fault === 'transient' ? 1 : 50 });
    const ended = await runWorkflow(workflow);
    stepFaults.clear();
    matrix.push({ workflow, step, fault, outcome: `${ended.status}${ended.fail_reason ? ` (${ended.fail_reason})` : ''}` });
    expect(ended.status, ended.fail_reason ?? '').toBe(expected);
    if (expected === 'FAIL') expect(ended.fail_reason).toContain(`injected: ${step}`);
    await checkInvariants(`${workflow}/${step}/${fault}`);
  });

  it.each(['backup-fail', 'restore-fail', 'delete-fail'] as const)('the failure path itself (%s) failing still ends the job FAIL and puts everything back', async (failStep) => {
    const workflow = ({ 'backup-fail': 'volume-backup', 'restore-fail': 'volume-restore', 'delete-fail': 'backup-delete' } as const)[failStep];
    const failing: HandlerName = ({ 'backup-fail': 'backup-segment', 'restore-fail': 'restore-segment', 'delete-fail': 'delete-backup' } as const)[failStep];
    stepFaults.clear();
    stepFaults.set(failing, { fault: 'permanent', left: 50 });
    stepFaults.set(failStep, { fault: 'permanent', left: 50 });
    const ended = await runWorkflow(workflow);
    stepFaults.clear();
    matrix.push({ workflow, step: failStep, fault: 'permanent (and cause)', outcome: `${ended.status}${ended.fail_reason ? ` (${ended.fail_reason})` : ''}` });
    expect(ended.status).toBe('FAIL');
    await checkInvariants(`${workflow}/${failStep}`);
  });

  it.each([
    { workflow: 'volume-backup', method: 'put', fault: 'storage 503 once', error: s3Fault(503, 'SlowDown'), call: 1, expected: 'SUCCESS' },
    { workflow: 'volume-backup', method: 'put', fault: 'storage 403', error: s3Fault(403, 'AccessDenied'), call: undefined, expected: 'FAIL' },
    { workflow: 'volume-restore', method: 'getRange', fault: 'storage 503 once', error: s3Fault(503, 'SlowDown'), call: 1, expected: 'SUCCESS' },
    { workflow: 'volume-restore', method: 'getRange', fault: 'storage 403', error: s3Fault(403, 'AccessDenied'), call: undefined, expected: 'FAIL' },
  ] as const)('$workflow: $fault on $method -> job $expected', async ({ workflow, method, fault, error, call, expected }) => {
    store.clearFaults();
    store.failOn({ method, error, ...(call ? { call } : {}) });
    const ended = await runWorkflow(workflow);
    store.clearFaults();
    matrix.push({ workflow, step: `store.${method}`, fault, outcome: `${ended.status}${ended.fail_reason ? ` (${ended.fail_reason})` : ''}` });
    expect(ended.status, ended.fail_reason ?? '').toBe(expected);
    await checkInvariants(`${workflow}/${method}/${fault}`);
  });
});

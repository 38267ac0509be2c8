// Every volume (and server) the API accepts fits Step Functions' documented limits in every workflow that fans out: the
// worst-case history events of an execution (counted from the synthesized definitions), the payload that
// carries the segment list, and the segment task's Lambda duration.
import { beforeAll, describe, expect, it } from 'vitest';
import { HANDLER_SPECS } from '../../infra/handlers.ts';
import { workflowDefinitions } from '../../infra/synth.ts';
import { DEFAULT_ENGINE_CONFIG } from '../../lib/engine/engine.ts';
import { MAX_SEGMENTS, segmentBlocksFor } from '../../lib/engine/backup.ts';
import { MAX_VOLUME_GB } from '../../lib/service/sizes.ts';
import { WORKFLOWS } from '../../lib/workflows/registry.ts';
import { MAX_SERVER_DISKS } from '../../lib/catalog/servers.ts';
import type { EngineDeps } from '../../lib/engine/engine.ts';
import { diskEngine } from '../../lib/workflows/steps/server-backup.ts';
import type { Asl } from './helpers.ts';
import { template } from './helpers.ts';

/** Step Functions quotas (standard workflows). */
const MAX_HISTORY_EVENTS = 25_000;
const MAX_PAYLOAD_BYTES = 256 * 1024;
/** The slowest a segment task may move data and still be planned for: a quarter of the engine's per-core rate. */
const SLOWEST_BYTES_PER_SECOND = 64 * 2 ** 20;

/** History events of one Task state run once: entered, scheduled, started, succeeded, exited. */
const TASK_EVENTS = 5;
/** Each retry of a task adds: failed, scheduled, started. */
const RETRY_EVENTS = 3;

let definitions: Record<string, Asl>;
beforeAll(() => {
  definitions = workflowDefinitions(template()) as unknown as Record<string, Asl>;
});

const largestVolumeBlocks = Math.ceil((MAX_VOLUME_GB * 2 ** 30) / DEFAULT_ENGINE_CONFIG.blockSize);

describe.each(['volume-backup', 'volume-restore'] as const)('%s at the largest volume the API accepts', (workflow) => {
  const segmentBlocks = segmentBlocksFor(largestVolumeBlocks, DEFAULT_ENGINE_CONFIG.segmentBlocks);
  const segments = Math.ceil(largestVolumeBlocks / segmentBlocks);

  it('needs at most MAX_SEGMENTS segments', () => {
    expect(segments).toBeLessThanOrEqual(MAX_SEGMENTS);
    expect(segments).toBeGreaterThan(MAX_SEGMENTS / 2); // the doubling stops as soon as it fits
  });

  it('stays under the history event limit, with a retry of every fifth segment and of every other task', () => {
    const asl = definitions[workflow]!;
    const states = Object.values(asl.States);
    const map = states.find((s) => s.Type === 'Map')!;
    const perIteration = 2 /* MapIterationStarted, MapIterationSucceeded */ + Object.values(map.ItemProcessor!.States).filter((s) => s.Type === 'Task').length * TASK_EVENTS;
    const otherTasks = states.filter((s) => s.Type === 'Task').length;
    const fixed = 2 /* execution started, succeeded */ + 4 /* Map state entered, started, succeeded, exited */ + otherTasks * (TASK_EVENTS + RETRY_EVENTS) + 4;
    const worst = fixed + segments * perIteration + Math.ceil(segments / 5) * RETRY_EVENTS;
    expect(perIteration).toBe(7);
    expect(worst).toBeLessThan(MAX_HISTORY_EVENTS);
  });

  it('passes the segment list well inside the payload limit', () => {
    const work = JSON.stringify({ segments: Array.from({ length: segments }, (_, i) => i) });
    const input = JSON.stringify({ ...{ projectId: 'p'.repeat(128), jobId: 'j'.repeat(128), backupId: 'b'.repeat(128), volumeId: 'v'.repeat(128) }, work });
    expect(input.length).toBeLessThan(MAX_PAYLOAD_BYTES / 8);
  });

  it('gives a segment task time to move its segment even at a quarter of the engine speed', () => {
    const handler = WORKFLOWS[workflow].segment;
    const seconds = (segmentBlocks * DEFAULT_ENGINE_CONFIG.blockSize) / SLOWEST_BYTES_PER_SECOND;
    expect(seconds).toBeLessThan(HANDLER_SPECS[handler].timeoutSeconds);
  });
});

describe('segment geometry', () => {
  it('keeps the configured segment size for volumes that fit, and doubles it for larger ones', () => {
    expect(segmentBlocksFor(2048 * MAX_SEGMENTS, 2048)).toBe(2048);
    expect(segmentBlocksFor(2048 * MAX_SEGMENTS + 1, 2048)).toBe(4096);
    expect(segmentBlocksFor(1, 2048)).toBe(2048);
    expect(Math.ceil(largestVolumeBlocks / segmentBlocksFor(largestVolumeBlocks, 2048))).toBe(MAX_SEGMENTS);
  });
});

// A server backup runs all its disks in one execution (a disks Map over the volume steps): the largest server
// the API accepts (MAX_SERVER_DISKS disks, MAX_VOLUME_GB in all) is cut by its total size (diskEngine), so it
// has the segments of one largest volume plus at most one per disk, in segments no larger than that volume's.
describe.each(['server-backup', 'server-restore'] as const)('%s at the largest server the API accepts', (workflow) => {
  const serverBlocks = largestVolumeBlocks;
  const segmentBlocks = diskEngine({ config: DEFAULT_ENGINE_CONFIG } as EngineDeps, MAX_VOLUME_GB * 2 ** 30).config.segmentBlocks;
  // The worst split for the segment count: one large disk and the rest just over a segment each.
  const diskBlocks = [serverBlocks - (MAX_SERVER_DISKS - 1) * (segmentBlocks + 1), ...Array.from({ length: MAX_SERVER_DISKS - 1 }, () => segmentBlocks + 1)];
  const segments = diskBlocks.reduce((sum, blocks) => sum + Math.ceil(blocks / segmentBlocks), 0);

  it('has at most MAX_SEGMENTS segments plus one per disk, none larger than the largest volume\'s', () => {
    expect(diskBlocks.reduce((a, b) => a + b, 0)).toBe(serverBlocks);
    expect(segments).toBeLessThanOrEqual(MAX_SEGMENTS + MAX_SERVER_DISKS);
    expect(segmentBlocks).toBe(segmentBlocksFor(largestVolumeBlocks, DEFAULT_ENGINE_CONFIG.segmentBlocks));
  });

  it('stays under the history event limit, with a retry of every fifth segment and of every other task', () => {
    const asl = definitions[workflow]!;
    const states = Object.values(asl.States);
    const disks = states.find((s) => s.Type === 'Map')!;
    const diskStates = Object.values(disks.ItemProcessor!.States);
    const segmentMap = diskStates.find((s) => s.Type === 'Map')!;
    const perSegment = 2 + Object.values(segmentMap.ItemProcessor!.States).filter((s) => s.Type === 'Task').length * TASK_EVENTS;
    // Per disk: its iteration, its tasks (prepare, commit; the fail task runs only on the way out) with a retry each, its segments Map.
    const diskTasks = diskStates.filter((s) => s.Type === 'Task').length - 1;
    const perDisk = 2 + diskTasks * (TASK_EVENTS + RETRY_EVENTS) + 4;
    const otherTasks = states.filter((s) => s.Type === 'Task').length;
    const fixed = 2 + 4 + otherTasks * (TASK_EVENTS + RETRY_EVENTS) + 4;
    const worst = fixed + MAX_SERVER_DISKS * perDisk + segments * perSegment + Math.ceil(segments / 5) * RETRY_EVENTS;
    expect(perSegment).toBe(7);
    expect(worst).toBeLessThan(MAX_HISTORY_EVENTS);
  });

  it('passes the disk list and each disk\'s segment list well inside the payload limit', () => {
    const id = 'x'.repeat(128);
    const disks = JSON.stringify({ disks: Array.from({ length: MAX_SERVER_DISKS }, () => ({ projectId: id, jobId: id, backupId: id, volumeId: id, name: 'n'.repeat(255) })) });
    expect(disks.length).toBeLessThan(MAX_PAYLOAD_BYTES / 8);
    const work = JSON.stringify({ segments: Array.from({ length: Math.ceil(diskBlocks[0]! / segmentBlocks) }, (_, i) => i) });
    expect(work.length).toBeLessThan(MAX_PAYLOAD_BYTES / 8);
  });
});

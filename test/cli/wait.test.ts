import { describe, expect, it } from 'vitest';
import { ApiError, NetworkError } from '../../lib/cli/client.ts';
import type { Job } from '../../lib/cli/client.ts';
import { formatJobLine, formatJobSummary, MAX_POLL_FAILURES, ProgressDisplay, RateMeter, waitForJob } from '../../lib/cli/wait.ts';

const job = (over: Partial<Job> = {}): Job => ({ job_id: 'j1', job_type: 'bksCreateBackup', status: 'RUNNING', entities: {}, ...over });

/** A fake clock whose sleep advances time. */
function clock() {
  let t = 1_000_000;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('RateMeter', () => {
  it('measures bytes per second since the first sample', () => {
    const m = new RateMeter();
    expect(m.sample(0, 50e6)).toBe(0);
    expect(m.sample(1000, 150e6)).toBe(100e6);
    expect(m.sample(2000, 150e6)).toBe(50e6);
  });

  it('starts over when bytes_done goes back', () => {
    const m = new RateMeter();
    m.sample(0, 100);
    expect(m.sample(1000, 10)).toBe(0);
    expect(m.sample(2000, 1010)).toBe(1000);
  });
});

describe('waitForJob', () => {
  it('polls every interval until the job ends', async () => {
    const c = clock();
    const states = [job({ status: 'INIT' }), job(), job(), job({ status: 'SUCCESS' })];
    const seen: string[] = [];
    const result = await waitForJob('j1', {
      getJob: async () => states.shift()!,
      now: c.now,
      sleep: c.sleep,
      onPoll: (j) => seen.push(j.status),
    });
    expect(result.outcome).toBe('finished');
    expect(result.job.status).toBe('SUCCESS');
    expect(result.elapsedMs).toBe(1500);
    expect(seen).toEqual(['INIT', 'RUNNING', 'RUNNING', 'SUCCESS']);
  });

  it('returns FAIL jobs as finished', async () => {
    const c = clock();
    const result = await waitForJob('j1', { getJob: async () => job({ status: 'FAIL', fail_reason: 'x' }), now: c.now, sleep: c.sleep });
    expect(result).toMatchObject({ outcome: 'finished', job: { status: 'FAIL', fail_reason: 'x' } });
  });

  it('times out, sleeping no longer than the time left', async () => {
    const c = clock();
    const sleeps: number[] = [];
    const result = await waitForJob('j1', {
      getJob: async () => job(),
      now: c.now,
      sleep: async (ms) => {
        sleeps.push(ms);
        await c.sleep(ms);
      },
      timeoutMs: 1200,
    });
    expect(result.outcome).toBe('timeout');
    expect(result.elapsedMs).toBe(1200);
    expect(sleeps).toEqual([500, 500, 200]);
  });

  it('stops when aborted', async () => {
    const c = clock();
    const ac = new AbortController();
    let polls = 0;
    const result = await waitForJob('j1', {
      getJob: async () => {
        if (++polls === 2) ac.abort();
        return job();
      },
      now: c.now,
      sleep: c.sleep,
      signal: ac.signal,
    });
    expect(result.outcome).toBe('aborted');
    expect(polls).toBe(2);
  });

  it('rides out a few failed polls but not a 4xx', async () => {
    const c = clock();
    const answers: (Job | Error)[] = [job(), new NetworkError('u', 'refused'), new ApiError(503, 'x', 'busy', null), job({ status: 'SUCCESS' })];
    const result = await waitForJob('j1', {
      getJob: async () => {
        const a = answers.shift()!;
        if (a instanceof Error) throw a;
        return a;
      },
      now: c.now,
      sleep: c.sleep,
    });
    expect(result.job.status).toBe('SUCCESS');

    await expect(
      waitForJob('j1', {
        getJob: async () => {
          throw new ApiError(404, 'common.0011', 'job not found', null);
        },
        now: c.now,
        sleep: c.sleep,
      }),
    ).rejects.toThrow('job not found');

    let calls = 0;
    await expect(
      waitForJob('j1', {
        getJob: async () => {
          if (calls++ === 0) return job();
          throw new NetworkError('u', 'refused');
        },
        now: c.now,
        sleep: c.sleep,
      }),
    ).rejects.toThrow('refused');
    expect(calls).toBe(1 + MAX_POLL_FAILURES);
  });
});

describe('job lines', () => {
  it('shows the live progress of a job', () => {
    expect(formatJobLine(job({ bytes_done: 100e6, bytes_total: 200e6 }), 2000, 50e6)).toBe(
      'backup  RUNNING [############------------]   50%  100.0/200.0 MB  50.0 MB/s  ETA 0:02',
    );
    expect(formatJobLine(job({ job_type: 'bksDeleteBackup', status: 'INIT' }), 0, 0)).toMatch(/^delete {2}INIT {4}\[-{24}\] {4}0%/);
  });

  it('sums up a finished job with its own duration and throughput', () => {
    const done = job({
      status: 'SUCCESS',
      begin_time: '2025-01-01T10:00:00.000Z',
      end_time: '2025-01-01T10:00:04.000Z',
      bytes_total: 200e6,
      entities: { backup_id: 'b1', volume_id: 'v1', snapshot_id: 's' },
    });
    expect(formatJobSummary(done, 9999)).toBe('backup job j1 SUCCESS in 4.0 s, 200.0 MB at 50.0 MB/s (backup_id b1, volume_id v1)');
    expect(formatJobSummary(job({ status: 'FAIL', job_type: 'bksRestoreBackup' }), 1500)).toBe('restore job j1 FAIL after 1.5 s');
    expect(formatJobSummary(job(), 61_000)).toBe('backup job j1 RUNNING still running after 1:01');
  });
});

describe('ProgressDisplay', () => {
  const stream = (isTTY: boolean, columns?: number) => {
    const chunks: string[] = [];
    return { chunks, write: (s: string) => chunks.push(s), isTTY, columns };
  };

  it('redraws one line on a terminal and replaces it with the summary', () => {
    const c = clock();
    const s = stream(true, 200);
    const d = new ProgressDisplay(s, c.now);
    d.update(job({ bytes_done: 0, bytes_total: 200e6 }));
    c.advance(1000);
    d.update(job({ bytes_done: 80e6, bytes_total: 200e6 }));
    d.update(job({ status: 'SUCCESS', bytes_done: 200e6, bytes_total: 200e6 }));
    d.finish('done');
    expect(s.chunks).toHaveLength(3);
    expect(s.chunks[0]).toBe('\rbackup  RUNNING [------------------------]    0%  0.0/200.0 MB  -- MB/s  ETA --:--\x1b[K');
    expect(s.chunks[1]).toBe('\rbackup  RUNNING [#########---------------]   40%  80.0/200.0 MB  80.0 MB/s  ETA 0:02\x1b[K');
    expect(s.chunks[2]).toBe('\r\x1b[Kdone\n');
  });

  it('fits the line to the terminal width', () => {
    const s = stream(true, 20);
    new ProgressDisplay(s, () => 0).update(job());
    expect(s.chunks[0]).toBe('\rbackup  RUNNING [--\x1b[K');
  });

  it('writes only the final line when not a terminal', () => {
    const s = stream(false);
    const d = new ProgressDisplay(s, () => 0);
    d.update(job());
    d.update(job());
    d.finish('done');
    expect(s.chunks).toEqual(['done\n']);
  });

  it('ends a live line before an error', () => {
    const s = stream(true, 80);
    const d = new ProgressDisplay(s, () => 0);
    d.update(job());
    d.abandon();
    expect(s.chunks.at(-1)).toBe('\n');
  });
});

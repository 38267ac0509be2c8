// Where CPU time and memory go, from Linux /proc: the whole machine (what runs outside this process is the
// emulator, mostly, or other load), each thread of this process, and this process's peak resident set.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

export interface MachineTicks {
  busy: number;
  total: number;
}

/** Machine-wide CPU ticks (1/100 s) from /proc/stat. */
export function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - v[3]! - v[4]!, total };
}

export type ThreadTicks = Map<string, { comm: string; ticks: number }>;

/** CPU ticks (1/100 s) per thread of this process, from /proc/self/task. */
export function threadTicks(): ThreadTicks {
  const out: ThreadTicks = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' '); // fields from #3 (state) on
      out.set(tid, { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(') ')), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** Thread ids of chunk-pool workers: threads that appear while a pool is constructed. */
const poolThreads = new Set<string>();

export function trackPoolThreads<T>(make: () => T): T {
  const before = new Set(readdirSync('/proc/self/task'));
  const pool = make();
  for (const tid of readdirSync('/proc/self/task')) if (!before.has(tid)) poolThreads.add(tid);
  return pool;
}

/** CPU seconds by kind of thread. */
export interface ThreadCpu {
  main: number;
  workers: number;
  /** libuv's thread pool: file I/O (volume reads and writes, the embedded object store). */
  libuv: number;
  /** V8's own threads (GC, compiler) and anything else. */
  other: number;
}

export function threadCpuDelta(a: ThreadTicks, b: ThreadTicks): ThreadCpu {
  const r: ThreadCpu = { main: 0, workers: 0, libuv: 0, other: 0 };
  for (const [tid, t] of b) {
    const s = (t.ticks - (a.get(tid)?.ticks ?? 0)) / 100;
    if (tid === String(process.pid)) r.main += s;
    else if (poolThreads.has(tid)) r.workers += s;
    else if (t.comm.startsWith('libuv')) r.libuv += s;
    else r.other += s;
  }
  return r;
}

export const perPass = (th: ThreadCpu, passes: number): ThreadCpu => ({
  main: th.main / passes,
  workers: th.workers / passes,
  libuv: th.libuv / passes,
  other: th.other / passes,
});

/**
 * This process's peak resident set since `reset()`. Linux resets the peak (VmHWM) when "5" is written to
 * /proc/self/clear_refs; where that is refused the peak covers the process's whole life, and `sincePhase`
 * says so.
 */
export class PeakRss {
  sincePhase = false;

  reset(): void {
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      this.sincePhase = true;
    } catch {
      this.sincePhase = false;
    }
  }

  /** Peak resident bytes. */
  read(): number {
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kib === undefined ? process.resourceUsage().maxRSS * 1024 : Number(kib) * 1024;
  }
}

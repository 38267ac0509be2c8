// Units and number formatting shared by the benchmarks. MB = 10^6 bytes; MiB = 2^20.
export const MiB = 1024 * 1024;

export const mb = (bytes: number) => bytes / 1e6;
/** MB/s for `bytes` in `ms` milliseconds. */
export const rate = (bytes: number, ms: number) => (ms > 0 ? bytes / 1e6 / (ms / 1000) : 0);
export const f0 = (n: number) => n.toFixed(0);
export const f1 = (n: number) => n.toFixed(1);
export const f2 = (n: number) => n.toFixed(2);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

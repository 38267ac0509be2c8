// EventBridge schedule target: one garbage collection over every key domain (lib/workflows/steps/gc.ts). The
// only function that may delete from the bucket and the chunk table; one at a time (reserved concurrency 1,
// and the run's lease in the catalog). Its report goes out as a `gc` notification.
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { processRuntime } from '../lib/wiring/runtime.ts';
import { logger, metrics } from '../lib/workflows/observability.ts';
import { gcOptionsFromEnv, gcRunStep } from '../lib/workflows/steps/gc.ts';
import type { GcReport } from '../lib/engine/gc.ts';

export const handler = async (): Promise<GcReport> => {
  const tasks = (await processRuntime()).taskDeps();
  try {
    const report = await gcRunStep(
      { engine: tasks.engine, backups: tasks.backups, gcQueue: tasks.gcQueue, ...(tasks.notifier ? { notifier: tasks.notifier } : {}) },
      gcOptionsFromEnv(),
    );
    metrics.addMetric('gc-bytes-freed', MetricUnit.Bytes, report.bytesFreed);
    metrics.addMetric('gc-packs-deleted', MetricUnit.Count, report.packsDeleted);
    logger.info('gc run done', { ...report });
    return report;
  } finally {
    metrics.publishStoredMetrics();
  }
};

// EventBridge schedule target: the periodic integrity check of every project's backups (or the projects the
// rule's input names), with read-only rights; results go out as `check` notifications, one per project.
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { processRuntime } from '../lib/wiring/runtime.ts';
import { logger, metrics } from '../lib/workflows/observability.ts';
import { checkRunStep } from '../lib/workflows/steps/check.ts';
import type { CheckRunResult } from '../lib/workflows/steps/check.ts';

/** The rule's input; a scheduled event without one checks metadata only. Unknown fields are ignored. */
const CheckRunEvent = z.object({
  projectIds: z.array(z.string().min(1)).min(1).optional(),
  readDataPercent: z.number().min(0).max(100).optional(),
  seed: z.string().min(1).optional(),
});

export const handler = async (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<CheckRunResult> => {
  const parsed = CheckRunEvent.safeParse(event ?? {});
  if (!parsed.success) throw new Error(`check-run: ${z.prettifyError(parsed.error)}`);
  const runtime = await processRuntime();
  const tasks = runtime.taskDeps();
  try {
    const result = await checkRunStep(
      { engine: tasks.engine, backups: tasks.backups, ...(tasks.notifier ? { notifier: tasks.notifier } : {}) },
      parsed.data,
      context ? () => context.getRemainingTimeInMillis() : undefined,
    );
    metrics.addMetric('check-run-damage', MetricUnit.Count, result.damage);
    metrics.addMetric('check-run-bytes-read', MetricUnit.Bytes, result.bytesRead);
    (result.damage ? logger.error : logger.info).call(logger, 'check run done', { ...result });
    return result;
  } finally {
    metrics.publishStoredMetrics();
  }
};

// The one wrapper every workflow Lambda handler uses: validate the input with the contract's zod schema,
// log with the job and project as keys, count successes and failures, and let errors propagate by name
// so the state machine's Retry and Catch see them (a transient one as TransientError, see errors.ts).
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { logger, metrics } from './observability.ts';
import { processRuntime } from '../wiring/runtime.ts';
import { classifyStepError } from './errors.ts';
import type { TaskDeps } from './steps/deps.ts';

export class InvalidTaskInput extends Error {
  override name = 'InvalidTaskInput';
}

export function taskHandler<S extends z.ZodType<{ projectId: string; jobId: string }>, R>(
  name: string,
  schema: S,
  run: (deps: TaskDeps, input: z.infer<S>) => Promise<R>,
): (event: unknown) => Promise<R> {
  return async (event: unknown) => {
    const parsed = schema.safeParse(event);
    if (!parsed.success) throw new InvalidTaskInput(`${name}: ${z.prettifyError(parsed.error)}`);
    const input = parsed.data;
    logger.appendKeys({ task: name, projectId: input.projectId, jobId: input.jobId });
    const started = Date.now();
    try {
      const result = await run((await processRuntime()).taskDeps(), input);
      metrics.addMetric(`${name}-success`, MetricUnit.Count, 1);
      logger.info('task done', { ms: Date.now() - started });
      return result;
    } catch (err) {
      metrics.addMetric(`${name}-failure`, MetricUnit.Count, 1);
      logger.error('task failed', err as Error);
      throw classifyStepError(err);
    } finally {
      metrics.publishStoredMetrics();
      logger.resetKeys();
    }
  };
}

// EventBridge target: "Step Functions Execution Status Change" of the stack's state machines, status FAILED,
// TIMED_OUT or ABORTED. Finds the workflow by its state machine ARN and runs its failure path in-process
// (lib/workflows/steps/execution-failed.ts). An error goes back to Lambda, which retries the event and then
// leaves it in this function's dead-letter queue.
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { processRuntime } from '../lib/wiring/runtime.ts';
import { logger, metrics } from '../lib/workflows/observability.ts';
import { WORKFLOWS, WORKFLOW_NAMES } from '../lib/workflows/registry.ts';
import type { WorkflowName } from '../lib/workflows/registry.ts';
import { ENDED_BADLY, failEndedExecution } from '../lib/workflows/steps/execution-failed.ts';
import type { EndedExecutionResult } from '../lib/workflows/steps/execution-failed.ts';

const ExecutionStatusChange = z.object({
  source: z.literal('aws.states'),
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.object({
    executionArn: z.string(),
    stateMachineArn: z.string(),
    status: z.enum(ENDED_BADLY),
    // The execution input as a JSON string. EventBridge leaves it out above 248 KiB; ours carry ids only.
    input: z.string(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});

/** The workflow of a state machine, by the ARNs the stack puts in the environment (each workflow's arnEnv). */
export function workflowOfStateMachine(stateMachineArn: string, env: NodeJS.ProcessEnv = process.env): WorkflowName | undefined {
  return WORKFLOW_NAMES.find((workflow) => env[WORKFLOWS[workflow].arnEnv] === stateMachineArn);
}

export const handler = async (event: unknown): Promise<EndedExecutionResult> => {
  const parsed = ExecutionStatusChange.safeParse(event);
  if (!parsed.success) throw new Error(`execution-failed: not an execution status change: ${z.prettifyError(parsed.error)}`);
  const { detail } = parsed.data;
  const workflow = workflowOfStateMachine(detail.stateMachineArn);
  if (!workflow) throw new Error(`execution-failed: ${detail.stateMachineArn} is none of this stack's state machines`);
  logger.appendKeys({ task: 'execution-failed', workflow, executionArn: detail.executionArn, status: detail.status });
  try {
    const result = await failEndedExecution((await processRuntime()).taskDeps(), {
      workflow,
      status: detail.status,
      input: JSON.parse(detail.input) as unknown,
      error: detail.error,
      cause: detail.cause,
    });
    metrics.addMetric(`execution-failed-${result.outcome}`, MetricUnit.Count, 1);
    logger.info('execution ended', { ...result });
    return result;
  } catch (err) {
    metrics.addMetric('execution-failed-failure', MetricUnit.Count, 1);
    logger.error('failure path did not run', err as Error);
    throw err;
  } finally {
    metrics.publishStoredMetrics();
    logger.resetKeys();
  }
};

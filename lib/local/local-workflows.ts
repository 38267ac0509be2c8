// WorkflowStarter for local mode: runs the synthesized state machines with aws-local-stepfunctions, each
// Lambda task calling its handler module in this process. Every execution is recorded in the catalog
// while it runs (TableExecutionStore), so a restart finds what a stop or crash cut short.
import { StateMachine } from 'aws-local-stepfunctions';
import type { RunOptions, StateMachineDefinition } from 'aws-local-stepfunctions';
import type { ExecutionStore } from '../catalog/executions.ts';
import type { HandlerName, WorkflowName, WorkflowStarter } from '../workflows/registry.ts';
import { LOCAL_FUNCTION_ARN_PREFIX } from '../../infra/synth.ts';

type Handler = (event: unknown) => Promise<unknown>;
type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type JSONValue = Parameters<StateMachine['run']>[0];
type States = Record<string, Record<string, unknown>>;

export interface LocalStateMachine {
  definition: Record<string, unknown>;
  /** Task state name -> the handler it invokes. */
  taskHandlers: Record<string, HandlerName>;
}

/** Pairs each Task state of a resolved definition (see workflowDefinitions) with its handler. */
export function localStateMachine(definition: Record<string, unknown>): LocalStateMachine {
  const taskHandlers: Record<string, HandlerName> = {};
  const collect = (states: States) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task') {
        const resource = String(state.Resource);
        if (!resource.startsWith(LOCAL_FUNCTION_ARN_PREFIX)) throw new Error(`task ${name} does not invoke an OpenVBS function (${resource})`);
        taskHandlers[name] = resource.slice(LOCAL_FUNCTION_ARN_PREFIX.length) as HandlerName;
      }
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: States } | undefined;
      if (processor) collect(processor.States);
      for (const branch of (state.Branches as Array<{ States: States }> | undefined) ?? []) collect(branch.States);
    }
  };
  collect(definition.States as States);
  return { definition, taskHandlers };
}

/** Thrown by start() once the runtime is shutting down. */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
}

/** How an execution ended badly: FAILED (rejected), or ABORTED by stop() (a cancel). */
export interface EndedBadly {
  status: 'FAILED' | 'ABORTED';
  error?: string;
  cause?: string;
}

/**
 * Runs the workflow's failure path for an execution that ended badly, as the EventBridge rule makes it run on
 * AWS; a job its own failure path already ended is left alone by it.
 */
export type EndedBadlyHandler = (workflow: WorkflowName, name: string, input: unknown, ended: EndedBadly) => Promise<void>;

interface Running {
  name: string;
  /** Stops the execution at its next state. `stop` set: a cancel (the failure path runs); unset: a shutdown (resumed later). */
  abort: (stop?: { error: string; cause: string }) => void;
  done: Promise<void>;
}

export class LocalWorkflows implements WorkflowStarter {
  private readonly machines: Record<WorkflowName, LocalStateMachine>;
  private readonly loadHandler: (name: HandlerName) => Promise<Handler>;
  private readonly executions: ExecutionStore;
  private readonly onEndedBadly: EndedBadlyHandler | undefined;
  private readonly running = new Map<string, Running>();
  private accepting = true;

  constructor(machines: Record<WorkflowName, LocalStateMachine>, loadHandler: (name: HandlerName) => Promise<Handler>, executions: ExecutionStore, onEndedBadly?: EndedBadlyHandler) {
    this.machines = machines;
    this.loadHandler = loadHandler;
    this.executions = executions;
    this.onEndedBadly = onEndedBadly;
  }

  /**
   * Stops a running execution, as StopExecution does: it ends at its next state; once the steps it was running
   * have returned, its failure path runs with `error` and `cause` (so a cancelled job ends FAIL, "cancelled").
   * Resolves when that is done. Unknown or finished executions are left alone.
   */
  async stop(executionArn: string, reason: { error: string; cause: string }): Promise<void> {
    const running = this.running.get(executionArn.slice(executionArn.lastIndexOf(':') + 1));
    if (!running) return;
    running.abort(reason);
    await running.done;
  }

  async start(workflow: WorkflowName, name: string, input: unknown): Promise<{ executionArn: string }> {
    if (!this.accepting) throw new ShuttingDownError('the service is shutting down');
    const executionArn = `arn:aws:states:local:000000000000:execution:${workflow}:${name}`;
    // Like Step Functions: starting a running execution of the same name again is a no-op.
    if (this.running.has(name)) return { executionArn };
    await this.executions.begin({ name, workflow, input, startedAt: new Date().toISOString() });
    await this.run(workflow, name, input);
    return { executionArn };
  }

  /** Runs a recorded execution again from its start (after a restart): its steps are idempotent. */
  async resume(workflow: WorkflowName, name: string, input: unknown): Promise<void> {
    if (!this.running.has(name)) await this.run(workflow, name, input);
  }

  private async run(workflow: WorkflowName, name: string, input: unknown): Promise<void> {
    const machine = this.machines[workflow];
    // The steps this execution is running: a stop waits for them before the failure path puts things back.
    const inFlight = new Set<Promise<unknown>>();
    const handlers: LocalHandlers = {};
    for (const [state, handlerName] of Object.entries(machine.taskHandlers)) {
      const handler = await this.loadHandler(handlerName);
      handlers[state] = ((event: unknown) => {
        const call = handler(event);
        inFlight.add(call);
        void call.then(
          () => inFlight.delete(call),
          () => inFlight.delete(call),
        );
        return call;
      }) as LocalHandlers[string];
    }
    const sm = new StateMachine(machine.definition as unknown as StateMachineDefinition, { validationOptions: { checkPaths: false } });
    const execution = sm.run(input as JSONValue, { overrides: { taskResourceLocalHandlers: handlers } });
    // A failed or stopped execution is over (its failure path ran, or onEndedBadly runs it); only one aborted
    // by a shutdown stays recorded, to be resumed by the next start.
    let aborted: 'shutdown' | { error: string; cause: string } | undefined;
    const done = execution.result
      .then(
        () => this.executions.end(name),
        async (err: unknown) => {
          if (aborted === 'shutdown') return;
          if (aborted) {
            await Promise.allSettled([...inFlight]);
            await this.onEndedBadly?.(workflow, name, input, { status: 'ABORTED', ...aborted });
          } else {
            await this.onEndedBadly?.(workflow, name, input, { status: 'FAILED', ...(err instanceof Error ? { cause: err.message } : {}) });
          }
          await this.executions.end(name);
        },
      )
      .catch(() => undefined)
      .finally(() => this.running.delete(name));
    this.running.set(name, {
      name,
      done,
      abort: (stop) => {
        aborted = stop ?? 'shutdown';
        execution.abort();
      },
    });
  }

  /** Loads every handler module up front, as a warm Lambda would have it. */
  async warm(): Promise<void> {
    for (const machine of Object.values(this.machines)) for (const name of Object.values(machine.taskHandlers)) await this.loadHandler(name);
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** Resolves when no execution is running. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  /**
   * Stops taking new executions and waits up to `graceMs` for the running ones; those still running then
   * are aborted at their next state and stay recorded for the next start to resume.
   */
  async shutdown(graceMs: number): Promise<{ finished: boolean }> {
    this.accepting = false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((ok) => {
      timer = setTimeout(() => ok(true), graceMs);
    });
    const late = await Promise.race([this.idle().then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) for (const r of this.running.values()) r.abort();
    return { finished: !late };
  }
}

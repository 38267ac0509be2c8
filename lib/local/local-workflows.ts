// WorkflowStarter for local mode: runs the synthesized state machines with aws-local-stepfunctions,
// each Lambda task calling its handler module in this process.
import { StateMachine } from 'aws-local-stepfunctions';
import type { RunOptions, StateMachineDefinition } from 'aws-local-stepfunctions';
import type { WorkflowName, WorkflowStarter } from '../workflows/contracts.ts';
import type { LocalStateMachine } from './state-machines.ts';

type Handler = (event: unknown) => Promise<unknown>;
type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type JSONValue = Parameters<StateMachine['run']>[0];

export interface ExecutionRecord {
  executionArn: string;
  workflow: WorkflowName;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  error?: string;
}

export class LocalWorkflows implements WorkflowStarter {
  private readonly machines: Map<WorkflowName, LocalStateMachine>;
  private readonly loadHandler: (name: string) => Promise<Handler>;
  private readonly running = new Set<Promise<unknown>>();
  readonly executions = new Map<string, ExecutionRecord>();

  constructor(machines: Map<WorkflowName, LocalStateMachine>, loadHandler: (name: string) => Promise<Handler>) {
    this.machines = machines;
    this.loadHandler = loadHandler;
  }

  async start(workflow: WorkflowName, name: string, input: unknown): Promise<{ executionArn: string }> {
    const machine = this.machines.get(workflow);
    if (!machine) throw new Error(`no state machine for workflow ${workflow}`);
    const handlers: LocalHandlers = {};
    for (const [state, handlerName] of Object.entries(machine.taskHandlers)) handlers[state] = (await this.loadHandler(handlerName)) as LocalHandlers[string];
    const executionArn = `arn:aws:states:local:000000000000:execution:${workflow}:${name}`;
    const record: ExecutionRecord = { executionArn, workflow, status: 'RUNNING' };
    this.executions.set(executionArn, record);
    const sm = new StateMachine(machine.definition as unknown as StateMachineDefinition, { validationOptions: { checkPaths: false } });
    const execution = sm.run(input as JSONValue, { overrides: { taskResourceLocalHandlers: handlers } });
    const done = execution.result.then(
      () => {
        record.status = 'SUCCEEDED';
      },
      (err: unknown) => {
        record.status = 'FAILED';
        record.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      },
    );
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
    return { executionArn };
  }

  /** Loads every handler module up front, as a warm Lambda would have it. */
  async warm(): Promise<void> {
    for (const machine of this.machines.values()) for (const name of Object.values(machine.taskHandlers)) await this.loadHandler(name);
  }

  /** Resolves when no execution is running. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }
}

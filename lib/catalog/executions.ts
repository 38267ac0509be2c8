// Workflow executions the local runtime has started and not seen end. Step Functions keeps its own
// executions on AWS; locally this record is what lets a restart find the work a stop or crash cut
// short, and resume it. An item exists only while its execution runs.
//
// item: pk "LOCALEXEC"  sk "<execution name>"  { name, workflow, input, startedAt }
import type { WorkflowName } from '../workflows/registry.ts';
import type { Table } from './table.ts';
import { ConditionFailedError, cond, queryAll } from './table.ts';
import { fromItem } from './tables.ts';

const PARTITION = 'LOCALEXEC';

export interface ExecutionRecord {
  /** The execution's name: the job id. */
  name: string;
  workflow: WorkflowName;
  input: unknown;
  startedAt: string;
}

export interface ExecutionStore {
  /** Records a started execution; false when one of that name is already recorded. */
  begin(record: ExecutionRecord): Promise<boolean>;
  end(name: string): Promise<void>;
  listRunning(): Promise<ExecutionRecord[]>;
}

export class TableExecutionStore implements ExecutionStore {
  private readonly table: Table;

  constructor(table: Table) {
    this.table = table;
  }

  async begin(record: ExecutionRecord): Promise<boolean> {
    try {
      await this.table.put({ pk: PARTITION, sk: record.name, ...record }, cond.notExists());
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async end(name: string): Promise<void> {
    await this.table.delete({ pk: PARTITION, sk: name });
  }

  async listRunning(): Promise<ExecutionRecord[]> {
    const out: ExecutionRecord[] = [];
    for await (const item of queryAll(this.table, { partition: PARTITION })) out.push(fromItem<ExecutionRecord>(item));
    return out;
  }
}

// Faults injected into workflow steps for the fault-injection matrices: a step's handler is wrapped so that it
// throws a planned error (permanent, or a TransientError the state machine retries) a number of times, or
// waits until a gate opens (to keep a job running while a test cancels it); and S3-like storage errors.
import type { Handler } from '../../lib/local/service.ts';
import { TransientError } from '../../lib/workflows/errors.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';

export type StepFault = 'permanent' | 'transient';

export class StepFaults {
  /** Planned faults per step: thrown while `left` > 0. */
  readonly planned = new Map<HandlerName, { fault: StepFault; left: number }>();
  /** Steps held until the promise settles. */
  readonly gates = new Map<HandlerName, Promise<void>>();

  /** The wrapper to give the local runtime (`startLocalService({ wrapHandler })`). */
  readonly wrapHandler = (name: HandlerName, handler: Handler): Handler => {
    return async (event) => {
      const gate = this.gates.get(name);
      if (gate) await gate;
      const planned = this.planned.get(name);
      if (planned && planned.left > 0) {
        planned.left--;
        throw planned.fault === 'transient' ? new TransientError(`injected: ${name} hit a transient fault`) : new Error(`injected: ${name} failed`);
      }
      return handler(event);
    };
  };
}

/** An error as the S3 client throws it, with the HTTP status the error classification reads. */
export const s3Fault = (status: number, name: string) => () => Object.assign(new Error(`injected storage ${name}`), { name, $metadata: { httpStatusCode: status } });

// Which step failures are retried: classified in one place (lib/workflows/errors.ts).
import { describe, expect, it } from 'vitest';
import { ConditionFailedError, TransactionConflictError } from '../../lib/catalog/table.ts';
import { RestoreIntegrityError } from '../../lib/engine/errors.ts';
import { TransientError, classifyStepError, isTransient } from '../../lib/workflows/errors.ts';
import { WorkflowStateError } from '../../lib/workflows/steps/job.ts';

const named = (name: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`${name} happened`), { name, ...extra });
const errno = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

describe('transient step failures', () => {
  it.each([
    ['S3 throttling', named('SlowDown', { $metadata: { httpStatusCode: 503 } })],
    ['DynamoDB throughput', named('ProvisionedThroughputExceededException')],
    ['a 500 from any AWS service', named('InternalError', { $metadata: { httpStatusCode: 500 } })],
    ['an unnamed 503', named('UnknownError', { $metadata: { httpStatusCode: 503 } })],
    ['a 429', named('Whatever', { $metadata: { httpStatusCode: 429 } })],
    ['the SDK marking it retryable', named('SomeFault', { $retryable: { throttling: false } })],
    ['KMS internal', named('KMSInternalException')],
    ['an SDK timeout', named('TimeoutError')],
    ['a reset connection', errno('ECONNRESET')],
    ['a refused connection', errno('ECONNREFUSED')],
    ['a lost race on a conditional write', new TransactionConflictError('conflict')],
    ['a busy SQLite file', Object.assign(new Error('database is locked'), { code: 'ERR_SQLITE_ERROR', errcode: 5 })],
    ['a cause that is transient', new Error('write failed', { cause: errno('EPIPE') })],
  ])('retries %s', (_what, err) => {
    expect(isTransient(err)).toBe(true);
    const out = classifyStepError(err) as Error;
    expect(out).toBeInstanceOf(TransientError);
    expect(out.name).toBe('TransientError');
    expect(out.message).toContain((err as Error).message);
    expect(out.cause).toBe(err);
  });

  it.each([
    ['a validation error', named('ValidationException', { $metadata: { httpStatusCode: 400 } })],
    ['a missing object', named('NoSuchKey', { $metadata: { httpStatusCode: 404 } })],
    ['a refused key', named('AccessDeniedException', { $metadata: { httpStatusCode: 400 } })],
    ['a condition that did not hold', new ConditionFailedError('no')],
    ['an unexpected workflow state', new WorkflowStateError('backup b is error')],
    ['damaged data', new RestoreIntegrityError('b', 3, 'packs/x', 'authentication tag mismatch')],
    ['a missing file', errno('ENOENT')],
    ['a non-error value', 'boom'],
  ])('fails %s at once, unchanged', (_what, err) => {
    expect(isTransient(err)).toBe(false);
    expect(classifyStepError(err)).toBe(err);
  });
});

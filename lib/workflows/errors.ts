// Which step failures are worth another attempt: the one place that decides. A step's error that is
// transient (throttling, a 5xx from S3, DynamoDB or KMS, an SDK timeout, a reset connection, a write that
// lost a race, a busy embedded database) leaves the handler as a TransientError, and the state machines
// retry exactly that, with backoff, besides Lambda's own transient failures. Everything else (validation,
// not found, a state the workflow does not expect, damaged data) fails at once into the failure path.

/** The name Step Functions sees for a failure worth retrying (a Lambda error's errorType is the error's name). */
export const TRANSIENT_ERROR = 'TransientError';

export class TransientError extends Error {
  override name = TRANSIENT_ERROR;
}

/**
 * Errors Step Functions reports for the Lambda invocation itself that are worth another attempt: service
 * hiccups, and an invocation that timed out or died (`Sandbox.Timedout`, `Lambda.Unknown`). Throttling by the
 * function's reserved concurrency has its own, longer retry in the stack.
 */
export const RETRYABLE_INVOCATION_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.Unknown', 'Sandbox.Timedout'] as const;

/** What the state machines retry with backoff. */
export const RETRYABLE_ERRORS: readonly string[] = [...RETRYABLE_INVOCATION_ERRORS, TRANSIENT_ERROR];

const TRANSIENT_NAMES = new Set([
  // AWS throttling and server-side trouble, by the names the SDK gives them
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'SlowDown',
  'InternalError',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'KMSInternalException',
  'TransactionConflictException',
  // the SDK's and Node's own
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  // ours: a conditional write that lost to a concurrent one and may simply be tried again
  'TransactionConflictError',
]);

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'EBUSY', 'SQLITE_BUSY', 'SQLITE_LOCKED']);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  errcode?: unknown;
  errstr?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  cause?: unknown;
}

/** True when another attempt may succeed where this one failed. */
export function isTransient(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 3) return false;
  const e = err as ErrorLike;
  if (e.name === TRANSIENT_ERROR) return true;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.$retryable) return true; // the SDK marks throttling and transient faults so
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  // node:sqlite: errcode 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED
  if (e.code === 'ERR_SQLITE_ERROR' && (e.errcode === 5 || e.errcode === 6)) return true;
  return isTransient(e.cause, depth + 1);
}

/** The error a step lets out: a TransientError (keeping the original as its cause) when it is worth a retry. */
export function classifyStepError(err: unknown): unknown {
  if (!isTransient(err) || (err as ErrorLike).name === TRANSIENT_ERROR) return err;
  const original = err as Error;
  return new TransientError(`${original.name}: ${original.message}`, { cause: err });
}

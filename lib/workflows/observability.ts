// Powertools for AWS Lambda, shared by every handler: JSON logs, X-Ray traces, CloudWatch metrics (EMF).
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

// Outside Lambda (local runtime, tests, benchmarks) metrics have nowhere to go and info logs are noise.
// Powertools reads these when the objects below are built, so the defaults are set here, first.
if (!process.env.AWS_LAMBDA_FUNCTION_NAME) {
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
}

export const logger = new Logger({ serviceName: 'openvbs' });
export const tracer = new Tracer({ serviceName: 'openvbs' });
export const metrics = new Metrics({ namespace: 'OpenVBS', serviceName: 'openvbs' });

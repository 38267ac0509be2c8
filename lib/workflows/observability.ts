// Powertools for AWS Lambda, shared by every handler: JSON logs, X-Ray traces, CloudWatch metrics (EMF).
// Outside Lambda (local runtime, tests) tracing is off and these only log.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

export const logger = new Logger({ serviceName: 'openvbs' });
export const tracer = new Tracer({ serviceName: 'openvbs' });
export const metrics = new Metrics({ namespace: 'OpenVBS', serviceName: 'openvbs' });

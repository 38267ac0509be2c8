// The REST API on Lambda (see docs/service-contract.md): API Gateway proxy event -> the Hono app.
// The token authorizer has already resolved the project; the app takes it from the request context.
import type { Context } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import type { LambdaEvent } from 'hono/aws-lambda';
import { createApiApp } from '../lib/api/app.ts';
import { awsClients } from '../lib/aws/clients.ts';
import { loadServiceConfig } from '../lib/config.ts';
import { createVbsService, quotasFromEnv } from '../lib/service/factory.ts';
import { SfnWorkflowStarter } from '../lib/service/sfn-starter.ts';

let lambdaHandler: ReturnType<typeof handle> | undefined;

function build(): ReturnType<typeof handle> {
  const clients = awsClients();
  const service = createVbsService({
    config: loadServiceConfig(),
    clients,
    workflows: SfnWorkflowStarter.fromEnv(clients.sfn),
    // Volumes on AWS are not image files on this function's disk: never register host paths here.
    dataDir: process.env.OPENVBS_DATA_DIR ?? '/tmp/openvbs',
    allowPathRegistration: false,
    quotas: quotasFromEnv(),
    ...(process.env.AWS_REGION ? { availabilityZone: process.env.AWS_REGION } : {}),
  });
  const app = createApiApp(service, {
    trustAuthorizerContext: true,
    ...(process.env.OPENVBS_PUBLIC_URL ? { baseUrl: process.env.OPENVBS_PUBLIC_URL } : {}),
  });
  return handle(app);
}

export async function handler(event: LambdaEvent, context: Context) {
  lambdaHandler ??= build();
  return lambdaHandler(event, context);
}

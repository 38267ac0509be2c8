// The REST API on Lambda (see docs/service-contract.md): API Gateway proxy event -> the Hono app.
// The token authorizer has already resolved the project; the app takes it from the request context.
import type { Context } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import type { LambdaEvent } from 'hono/aws-lambda';
import { createApiApp } from '../lib/api/app.ts';
import { awsClients } from '../lib/aws/clients.ts';
import { createServices, quotasFromEnv } from '../lib/service/factory.ts';
import { processRuntime } from '../lib/wiring/runtime.ts';
import { SfnWorkflowStarter } from '../lib/workflows/sfn-starter.ts';

let lambdaHandler: Promise<ReturnType<typeof handle>> | undefined;

async function build(): Promise<ReturnType<typeof handle>> {
  const runtime = await processRuntime();
  const services = createServices({
    stores: runtime.stores,
    keys: runtime.backend.keys,
    workflows: SfnWorkflowStarter.fromEnv(awsClients().sfn),
    provider: runtime.volumes,
    restoreNeedsStoppedServer: false,
    // Volumes on AWS are not image files on this function's disk: never register host paths here.
    dataDir: process.env.OPENVBS_DATA_DIR ?? '/tmp/openvbs',
    allowPathRegistration: false,
    quotas: quotasFromEnv(),
    ...(runtime.backend.notifier ? { notifier: runtime.backend.notifier } : {}),
    ...(runtime.backend.subscriptions ? { subscriptionManager: runtime.backend.subscriptions } : {}),
    ...(process.env.AWS_REGION ? { availabilityZone: process.env.AWS_REGION } : {}),
  });
  const app = createApiApp(services, {
    trustAuthorizerContext: true,
    ...(process.env.OPENVBS_PUBLIC_URL ? { baseUrl: process.env.OPENVBS_PUBLIC_URL } : {}),
  });
  return handle(app);
}

export async function handler(event: LambdaEvent, context: Context) {
  lambdaHandler ??= build();
  return (await lambdaHandler)(event, context);
}

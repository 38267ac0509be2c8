// The REST API on Lambda (see docs/service-contract.md): API Gateway proxy event -> the Hono app.
// The token authorizer has already resolved the project; the app takes it from the request context.
import type { Context } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import type { LambdaEvent } from 'hono/aws-lambda';
import { createApiApp } from '../lib/api/app.ts';
import { lambdaServices } from '../lib/wiring/lambda-services.ts';

let lambdaHandler: Promise<ReturnType<typeof handle>> | undefined;

async function build(): Promise<ReturnType<typeof handle>> {
  const services = await lambdaServices();
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

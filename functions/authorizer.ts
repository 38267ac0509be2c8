// API Gateway TOKEN authorizer (see docs/service-contract.md): X-Auth-Token -> project and scope.
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import { authorizeToken } from '../lib/api/authorizer.ts';
import { processRuntime } from '../lib/wiring/runtime.ts';

export async function handler(event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const { tokens } = (await processRuntime()).stores;
  return authorizeToken(event, (token) => tokens.resolve(token));
}

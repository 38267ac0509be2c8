// API Gateway TOKEN authorizer (see docs/service-contract.md): X-Auth-Token -> project.
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import { awsClients } from '../lib/aws/clients.ts';
import { authorizeToken } from '../lib/api/authorizer.ts';
import { TokenStore } from '../lib/catalog/tokens.ts';
import { loadServiceConfig } from '../lib/config.ts';

let tokens: TokenStore | undefined;

export async function handler(event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  tokens ??= new TokenStore(awsClients().ddb, loadServiceConfig().catalogTable);
  const store = tokens;
  return authorizeToken(event, async (token) => (await store.resolve(token))?.projectId);
}

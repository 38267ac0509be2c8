// API Gateway TOKEN authorizer: X-Auth-Token -> the project it is bound to and its scope. The policy allows
// the whole API (API Gateway caches it per token, at most 60 s, and reuses it for every method); the api
// function then checks that the path's project is the token's (another project's resources answer 404) and
// that the scope allows the route (403).
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import type { TokenRecord } from '../catalog/tokens.ts';

/** API Gateway answers 401 when an authorizer fails with exactly this message. */
export const UNAUTHORIZED = 'Unauthorized';

/** `arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/<method>/<path>` -> `…:<apiId>/*`. */
export function apiWildcardArn(methodArn: string): string {
  const [apiArn] = methodArn.split('/');
  if (!apiArn || !apiArn.startsWith('arn:') || apiArn.split(':').length < 6) throw new Error(`unexpected method ARN ${methodArn}`);
  return `${apiArn}/*`;
}

export async function authorizeToken(
  event: Pick<APIGatewayTokenAuthorizerEvent, 'authorizationToken' | 'methodArn'>,
  authenticate: (token: string) => Promise<Pick<TokenRecord, 'projectId' | 'scope'> | undefined>,
): Promise<APIGatewayAuthorizerResult> {
  const token = event.authorizationToken?.trim();
  const identity = token ? await authenticate(token) : undefined;
  if (!identity) throw new Error(UNAUTHORIZED);
  return {
    principalId: identity.projectId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiWildcardArn(event.methodArn) }],
    },
    context: { projectId: identity.projectId, scope: identity.scope },
  };
}

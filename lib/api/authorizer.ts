// API Gateway TOKEN authorizer: X-Auth-Token -> the project it is bound to. The policy allows the whole
// API (API Gateway caches it per token and reuses it for every method); the api function then checks that
// the path's project is the token's (another project's resources answer 404).
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';

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
  authenticate: (token: string) => Promise<string | undefined>,
): Promise<APIGatewayAuthorizerResult> {
  const token = event.authorizationToken?.trim();
  const projectId = token ? await authenticate(token) : undefined;
  if (!projectId) throw new Error(UNAUTHORIZED);
  return {
    principalId: projectId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiWildcardArn(event.methodArn) }],
    },
    context: { projectId },
  };
}

// The Lambda entry points with API Gateway events: functions/api.ts (REST proxy event, project from the
// authorizer context) and functions/authorizer.ts (TOKEN authorizer), wired from the environment to the
// AWS backend on the run's emulator.
import { WORKFLOWS, WORKFLOW_NAMES } from '../../lib/workflows/registry.ts';
import { randomBytes } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../lib/aws/clients.ts';
import type { CatalogStores } from '../../lib/catalog/stores.ts';
import { serviceConfigEnv } from '../../lib/config.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';
import { installProcessRuntime, processRuntime } from '../../lib/wiring/runtime.ts';
import { backupRecord, projectId } from '../service/service-env.ts';

/** The stores the handlers use (the process runtime built from the environment, as on Lambda). */
let stores: CatalogStores;
const p = projectId();

beforeAll(async () => {
  const config = await provisionLocalResources(createClients(), `t${randomBytes(5).toString('hex')}`);
  Object.assign(process.env, serviceConfigEnv(config), {
    // Every workflow's state machine ARN, as the stack gives the api function.
    ...Object.fromEntries(WORKFLOW_NAMES.map((w) => [WORKFLOWS[w].arnEnv, `arn:aws:states:us-east-1:000000000000:stateMachine:${w}`])),
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  stores = (await processRuntime()).stores;
});
afterAll(async () => {
  await (await processRuntime()).close();
  installProcessRuntime(undefined);
});

function proxyEvent(method: string, path: string, authorizer?: Record<string, string>): APIGatewayProxyEvent {
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: method,
    headers: { Host: 'abc123.execute-api.us-east-1.amazonaws.com' },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      stage: 'prod',
      httpMethod: method,
      path: `/prod${path}`,
      protocol: 'HTTP/1.1',
      requestId: 'req-1',
      requestTimeEpoch: Date.now(),
      resourceId: 'r1',
      resourcePath: '/{proxy+}',
      identity: { sourceIp: '127.0.0.1' } as APIGatewayProxyEvent['requestContext']['identity'],
      authorizer: authorizer ?? null,
    },
  } as APIGatewayProxyEvent;
}

const context = {} as Context;

describe('functions/api', () => {
  it('serves the app with the project from the authorizer context and stage links', async () => {
    const { handler } = await import('../../functions/api.ts');
    const rec = backupRecord(p);
    await stores.backups.createBackup(rec);
    const res = (await handler(proxyEvent('GET', `/v2/${p}/backups/${rec.backupId}`, { projectId: p, principalId: p }) as never, context)) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.backup.id).toBe(rec.backupId);
    expect(body.backup.availability_zone).toBe('us-east-1');
    expect(body.backup.links[0].href).toBe(`https://abc123.execute-api.us-east-1.amazonaws.com/prod/v2/${p}/backups/${rec.backupId}`);

    const foreign = (await handler(proxyEvent('GET', `/v2/${projectId()}/backups`, { projectId: p }) as never, context)) as APIGatewayProxyResult;
    expect(foreign.statusCode).toBe(404);
    const anonymous = (await handler(proxyEvent('GET', `/v2/${p}/backups`) as never, context)) as APIGatewayProxyResult;
    expect(anonymous.statusCode).toBe(401);
    const doc = (await handler(proxyEvent('GET', '/openapi.json') as never, context)) as APIGatewayProxyResult;
    expect(doc.statusCode).toBe(200);
  });

  it('does not register host paths on AWS', async () => {
    const { handler } = await import('../../functions/api.ts');
    const event = proxyEvent('POST', `/v2/${p}/volumes`, { projectId: p, scope: 'admin' });
    event.headers['Content-Type'] = 'application/json';
    event.body = JSON.stringify({ volume: { name: 'x', path: '/etc/hostname' } });
    const res = (await handler(event as never, context)) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe('OpenVBS.1102');
  });
});

describe('functions/authorizer', () => {
  it('allows a known token with its project and refuses others', async () => {
    const { handler } = await import('../../functions/authorizer.ts');
    const { token } = await stores.tokens.issue(p);
    const methodArn = 'arn:aws:execute-api:us-east-1:000000000000:abc123/prod/GET/v2/x/backups';
    const ok = await handler({ type: 'TOKEN', authorizationToken: token, methodArn });
    expect(ok.context).toEqual({ projectId: p, scope: 'admin' });
    expect(ok.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow', Resource: 'arn:aws:execute-api:us-east-1:000000000000:abc123/*' });
    await expect(handler({ type: 'TOKEN', authorizationToken: 'ovbs_nope', methodArn })).rejects.toThrow('Unauthorized');
  });
});

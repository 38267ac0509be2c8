// The REST API: API Gateway in front of the one Hono app (`api` function, proxy integration), every route behind
// the TOKEN authorizer (`authorizer` function, header X-Auth-Token) except GET /openapi.json.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
  TokenAuthorizer,
} from 'aws-cdk-lib/aws-apigateway';
import type { CfnRestApi, CfnStage, IRequestValidator } from 'aws-cdk-lib/aws-apigateway';
import { CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, acknowledgeCheckov } from '../nag.ts';
import { LOG_GROUP_NAMES } from './storage.ts';

export const AUTH_HEADER = 'X-Auth-Token';
export const API_LOGICAL_ID = 'RestApi';

export interface ApiProps {
  handler: IFunction;
  authorizer: IFunction;
  /** Encrypts the access log (it holds caller IPs and token-derived principal ids). */
  logKey: IKey;
  stageName?: string;
  /**
   * How long API Gateway caches an authorizer answer per token. Default 60 s, the most the service contract
   * allows (the authorizer's policy covers the whole API, see lib/api/authorizer.ts); a revoked or expired
   * token may keep working that long. 0 disables.
   */
  authorizerCacheTtl?: Duration;
  /** A WAFv2 web ACL (REGIONAL scope) to associate with the stage. */
  webAclArn?: string;
  logRetention?: RetentionDays;
}

export class Api extends Construct {
  readonly restApi: RestApi;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      logGroupName: LOG_GROUP_NAMES.service(Stack.of(this).stackName, 'api-access'),
      encryptionKey: props.logKey,
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.restApi = new RestApi(this, 'RestApi', {
      restApiName: 'openvbs',
      description: 'OpenVBS: VBS v2 / job v1 compatible volume backup API',
      endpointTypes: [EndpointType.REGIONAL],
      // Execution logging needs the account-level API Gateway CloudWatch role.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stageName ?? 'api',
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        loggingLevel: MethodLoggingLevel.ERROR,
        // Request/response bodies would put tokens and data into the logs.
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
      },
    });
    (this.restApi.node.defaultChild as CfnRestApi).overrideLogicalId(API_LOGICAL_ID);
    acknowledge(
      this.restApi,
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'The account-level role API Gateway uses to write execution logs; AWS maintains this policy for exactly that purpose and API Gateway assumes the role for every API of the account.',
    );

    const authorizer = new TokenAuthorizer(this, 'TokenAuthorizer', {
      handler: props.authorizer,
      identitySource: IdentitySource.header(AUTH_HEADER),
      resultsCacheTtl: props.authorizerCacheTtl ?? Duration.seconds(60),
    });

    // Shallow by design: the proxy path must be there; bodies and parameters are validated by the app's zod
    // schemas, which also answer in the VBS error shape.
    const validator: IRequestValidator = this.restApi.addRequestValidator('RequestValidator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const integration = new LambdaIntegration(props.handler, { proxy: true });
    const authorized = { authorizer, authorizationType: AuthorizationType.CUSTOM, requestValidator: validator };

    this.restApi.root.addMethod('ANY', integration, authorized);
    const proxy = this.restApi.root.addResource('{proxy+}');
    proxy.addMethod('ANY', integration, { ...authorized, requestParameters: { 'method.request.path.proxy': true } });
    const openapi = this.restApi.root.addResource('openapi.json').addMethod('GET', integration, {
      authorizationType: AuthorizationType.NONE,
      requestValidator: validator,
    });
    const openapiReason = 'The OpenAPI document describes the public API surface and is meant to be fetched without a token; it carries no project data.';
    acknowledge(openapi, 'APIG4', openapiReason);
    acknowledgeCheckov(openapi, 'CKV_AWS_59', openapiReason);
    acknowledge(
      this.restApi,
      'COG4',
      'OpenVBS authenticates the VBS/CSBS way: an X-Auth-Token header bound to one project, checked by a Lambda TOKEN authorizer against hashed tokens in the catalog. Cognito user pools do not fit that client contract.',
    );

    // Authorizer refusals and gateway errors in the API's own error shape {"error":{"code","message"}}.
    const errorTemplate = { 'application/json': '{"error":{"code":"$context.error.responseType","message":$context.error.messageString}}' };
    this.restApi.addGatewayResponse('Unauthorized', { type: ResponseType.UNAUTHORIZED, statusCode: '401', templates: errorTemplate });
    this.restApi.addGatewayResponse('AccessDenied', { type: ResponseType.ACCESS_DENIED, statusCode: '401', templates: errorTemplate });
    this.restApi.addGatewayResponse('Default4xx', { type: ResponseType.DEFAULT_4XX, templates: errorTemplate });
    this.restApi.addGatewayResponse('Default5xx', { type: ResponseType.DEFAULT_5XX, templates: errorTemplate });

    const stage = this.restApi.deploymentStage;
    acknowledgeCheckov(
      stage,
      'CKV_AWS_120',
      'Every answer is per token and project, and job and backup states change by the second: a cache would serve stale or foreign answers, and it is billed by the hour.',
    );
    if (props.webAclArn) {
      new CfnWebACLAssociation(this, 'WebAcl', { resourceArn: stage.stageArn, webAclArn: props.webAclArn });
    } else {
      acknowledge(
        stage.node.defaultChild as CfnStage,
        'APIG3',
        'WAF is opt-in (Api prop webAclArn / stack prop webAclArn): every request is authenticated by the token authorizer, and a web ACL is a fixed monthly cost many self-hosted installations do not want.',
      );
    }
  }

  get url(): string {
    return this.restApi.url;
  }
}

// The REST API: VBS v2 + job v1 and the OpenVBS extensions (volumes, tokens, keys), one Hono app for
// Lambda (functions/api.ts) and the local runtime's Node server. This file only composes: auth and the
// body limit in front, one sub-app per resource (./routes/), error rendering (./http.ts) and
// GET /openapi.json, which lists every route the sub-apps declare with every status it can answer.
import { Logger } from '@aws-lambda-powertools/logger';
import { bodyLimit } from 'hono/body-limit';
import type { Services } from '../service/factory.ts';
import { TokenCache, authenticate } from './auth.ts';
import { createRouter, handleErrors } from './http.ts';
import type { ApiLogger, ApiRouter } from './http.ts';
import { bodyResponses, sharedResponses } from './schemas.ts';
import { backupRoutes } from './routes/backups.ts';
import { checkpointRoutes } from './routes/checkpoints.ts';
import { csbsPolicyRoutes } from './routes/csbs-policies.ts';
import { csbsTagRoutes } from './routes/csbs-tags.ts';
import { jobRoutes } from './routes/jobs.ts';
import { policyRoutes } from './routes/policies.ts';
import { keyRoutes } from './routes/keys.ts';
import { serverRoutes } from './routes/servers.ts';
import { sharingRoutes } from './routes/sharing.ts';
import { subscriptionRoutes } from './routes/subscriptions.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { volumeRoutes } from './routes/volumes.ts';

export interface ApiAppOptions {
  /** How long a resolved token is trusted without asking the store again. Default 60 s. */
  tokenCacheMs?: number;
  /**
   * Behind API Gateway with the token authorizer: take the project from the authorizer's context
   * (`requestContext.authorizer.projectId`) instead of looking the token up again.
   */
  trustAuthorizerContext?: boolean;
  /** Public base URL for links (no trailing slash); default: derived from the request. */
  baseUrl?: string;
  /** Largest request body accepted. Default 256 KiB. */
  maxBodyBytes?: number;
  logger?: ApiLogger;
}

/** Adds to every route's document what the checks in front of it answer (token, body limit, JSON, the 500 of last resort). */
function documentSharedResponses(app: ApiRouter): void {
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== 'route') continue;
    // each entry is this app's own copy of the route (OpenAPIHono.route copies them), so the modules' constants stay as declared
    const route = def.route;
    route.responses = { ...sharedResponses, ...(route.request?.body ? bodyResponses : {}), ...route.responses };
  }
}

export function createApiApp(services: Services, options: ApiAppOptions = {}) {
  const app = createRouter();
  handleErrors(app, options.logger ?? new Logger({ serviceName: 'openvbs-api' }));

  const tokens = new TokenCache((token) => services.tokens.authenticate(token), options.tokenCacheMs ?? 60_000);
  const limit = bodyLimit({
    maxSize: options.maxBodyBytes ?? 256 * 1024,
    onError: (c) => c.json({ error: { code: 'OpenVBS.0413', message: 'request body too large' } }, 413),
  });
  const auth = authenticate({ tokens, trustAuthorizerContext: options.trustAuthorizerContext ?? false });
  for (const prefix of ['/v1/*', '/v2/*']) app.use(prefix, auth, limit);

  app.route('/', backupRoutes(services.backups, options.baseUrl !== undefined ? { baseUrl: options.baseUrl } : {}));
  app.route('/', sharingRoutes(services.sharing, options.baseUrl !== undefined ? { baseUrl: options.baseUrl } : {}));
  app.route('/', jobRoutes(services.jobs));
  app.route('/', policyRoutes(services.policies));
  app.route('/', volumeRoutes(services.volumes));
  app.route('/', serverRoutes(services.servers));
  app.route('/', checkpointRoutes(services.serverBackups, { ...(options.baseUrl !== undefined ? { baseUrl: options.baseUrl } : {}), availabilityZone: services.backups.availabilityZone }));
  app.route('/', csbsTagRoutes(services.serverBackups, services.csbsPolicies));
  app.route('/', csbsPolicyRoutes(services.csbsPolicies, options.baseUrl !== undefined ? { baseUrl: options.baseUrl } : {}));
  app.route('/', tokenRoutes(services.tokens));
  app.route('/', keyRoutes(services.keys));
  app.route('/', subscriptionRoutes(services.subscriptions));
  documentSharedResponses(app);

  // The OpenAPI document needs no token.
  app.openAPIRegistry.registerComponent('securitySchemes', 'XAuthToken', { type: 'apiKey', in: 'header', name: 'X-Auth-Token' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'OpenVBS',
      version: '0.1.0',
      description: 'Open Volume Backup Service: the VBS v2 and job v1 APIs, plus OpenVBS volume inventory, token and customer key extensions.',
    },
    security: [{ XAuthToken: [] }],
  });

  return app;
}

export type ApiApp = ReturnType<typeof createApiApp>;

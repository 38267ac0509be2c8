// Notification subscriptions (OpenVBS extension): an admin token of a project subscribes email addresses, phone
// numbers and HTTPS endpoints to the project's job notifications (all, or failures only), lists and removes them.
import { createRoute } from '@hono/zod-openapi';
import type { SubscriptionService } from '../../service/subscriptions.ts';
import { createRouter } from '../http.ts';
import { ErrorResponse, ProjectParams, adminResponses, errorResponses, json, jsonBody } from '../schemas.ts';
import { CreateSubscriptionBody, NewSubscriptionResponse, SubscriptionListResponse, SubscriptionParams, SubscriptionResponse, subscriptionView } from './subscriptions.schemas.ts';

const tags = ['Notifications (OpenVBS)'];
const responses = { ...errorResponses, ...adminResponses };

const createSubscriptionRoute = createRoute({
  method: 'post',
  path: '/v1/{project_id}/subscriptions',
  tags,
  summary: 'Subscribe an email address, phone number (SMS) or HTTPS endpoint to the project’s job notifications',
  request: { params: ProjectParams, body: jsonBody(CreateSubscriptionBody) },
  responses: {
    201: json(NewSubscriptionResponse, 'The new subscription (on AWS pending until the endpoint confirms it)'),
    ...responses,
    403: json(ErrorResponse, 'A user token (OpenVBS.0403), or an http endpoint where the operator does not allow them (OpenVBS.1703)'),
    409: json(ErrorResponse, 'The endpoint already has a subscription (OpenVBS.1702), or the deployment has no notification topic (OpenVBS.1705)'),
  },
});

const listSubscriptionsRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/subscriptions',
  tags,
  summary: 'List the project’s subscriptions, oldest first',
  request: { params: ProjectParams },
  responses: { 200: json(SubscriptionListResponse, 'Subscriptions'), ...responses },
});

const showSubscriptionRoute = createRoute({
  method: 'get',
  path: '/v1/{project_id}/subscriptions/{subscription_id}',
  tags,
  summary: 'Show a subscription (its status asked again while pending)',
  request: { params: SubscriptionParams },
  responses: { 200: json(SubscriptionResponse, 'The subscription'), ...responses },
});

const deleteSubscriptionRoute = createRoute({
  method: 'delete',
  path: '/v1/{project_id}/subscriptions/{subscription_id}',
  tags,
  summary: 'Unsubscribe: no further notification reaches the endpoint',
  request: { params: SubscriptionParams },
  responses: { 204: { description: 'Unsubscribed' }, ...responses },
});

export function subscriptionRoutes(subscriptions: SubscriptionService) {
  const app = createRouter();

  app.openapi(createSubscriptionRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    const req = c.req.valid('json').subscription;
    const { record, secret } = await subscriptions.create(project_id, {
      protocol: req.protocol,
      endpoint: req.endpoint,
      ...(req.failures_only !== undefined ? { failuresOnly: req.failures_only } : {}),
    });
    return c.json({ subscription: { ...subscriptionView(record), ...(secret ? { secret } : {}) } }, 201);
  });

  app.openapi(listSubscriptionsRoute, async (c) => {
    const { project_id } = c.req.valid('param');
    return c.json({ subscriptions: (await subscriptions.list(project_id)).map(subscriptionView) }, 200);
  });

  app.openapi(showSubscriptionRoute, async (c) => {
    const { project_id, subscription_id } = c.req.valid('param');
    return c.json({ subscription: subscriptionView(await subscriptions.get(project_id, subscription_id)) }, 200);
  });

  app.openapi(deleteSubscriptionRoute, async (c) => {
    const { project_id, subscription_id } = c.req.valid('param');
    await subscriptions.delete(project_id, subscription_id);
    return c.body(null, 204);
  });

  return app;
}

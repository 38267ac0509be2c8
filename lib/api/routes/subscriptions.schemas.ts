// Notification subscriptions on the wire (OpenVBS extension). Shapes:
//   POST   /v1/{project_id}/subscriptions                      {"subscription":{protocol, endpoint, failures_only?}}
//   GET    /v1/{project_id}/subscriptions                      {"subscriptions":[...]}
//   GET    /v1/{project_id}/subscriptions/{subscription_id}    {"subscription":{...}}
//   DELETE /v1/{project_id}/subscriptions/{subscription_id}
// A webhook delivered locally gets a signing `secret`, shown only in the answer to its creation.
import { z } from '@hono/zod-openapi';
import type { SubscriptionRecord } from '../../catalog/subscriptions.ts';
import { SUBSCRIPTION_PROTOCOLS, SUBSCRIPTION_STATUSES } from '../../catalog/subscriptions.ts';
import { ENDPOINT_MAX } from '../../service/subscriptions.ts';
import { ProjectParams, Timestamp, documented, idParam, vbsTime } from '../schemas.ts';

export const SubscriptionParams = ProjectParams.extend({ subscription_id: idParam('subscription_id') });

export const CreateSubscriptionBody = z
  .object({
    subscription: z.strictObject({
      protocol: z.string().openapi({
        enum: [...SUBSCRIPTION_PROTOCOLS],
        description: '`email`, `sms` or `https`; `http` only where the operator allows it (local mode, OPENVBS_ALLOW_HTTP_WEBHOOKS=1; otherwise OpenVBS.1703). Anything else: OpenVBS.1701',
      }),
      endpoint: documented({
        maxLength: ENDPOINT_MAX,
        description: 'An email address, a phone number in E.164 form (+4915112345678) or a URL of the protocol, without user name or password (OpenVBS.1701)',
      }).openapi({ example: 'ops@example.com' }),
      failures_only: z.boolean().optional().openapi({ description: 'Only failed jobs reach it. Default false' }),
    }),
  })
  .openapi('CreateSubscriptionRequest');

const subscriptionFields = {
  id: z.string(),
  project_id: z.string(),
  protocol: z.enum(SUBSCRIPTION_PROTOCOLS),
  endpoint: z.string(),
  failures_only: z.boolean(),
  status: z.enum(SUBSCRIPTION_STATUSES).openapi({
    description:
      '`pending_confirmation`: on AWS, until the address confirms (the link SNS mails, or the HTTPS endpoint answering SNS’s SubscriptionConfirmation); `confirmed`: notifications are delivered; `expired`: never confirmed, dropped by SNS after three days',
  }),
  created_at: Timestamp,
};

export const Subscription = z.object(subscriptionFields).openapi('Subscription');

export const SubscriptionResponse = z.object({ subscription: Subscription });

export const NewSubscriptionResponse = z.object({
  subscription: z
    .object({
      ...subscriptionFields,
      secret: z.string().optional().openapi({ description: 'Webhooks delivered locally: the HMAC-SHA256 key of their X-OpenVBS-Signature header; shown only here' }),
    })
    .openapi('NewSubscription'),
});

export const SubscriptionListResponse = z.object({ subscriptions: z.array(Subscription) });

export function subscriptionView(record: SubscriptionRecord): z.infer<typeof Subscription> {
  return {
    id: record.subscriptionId,
    project_id: record.projectId,
    protocol: record.protocol,
    endpoint: record.endpoint,
    failures_only: record.failuresOnly,
    status: record.status,
    created_at: vbsTime(record.createdAt),
  };
}

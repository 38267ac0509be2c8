// Webhook signatures (local delivery): each POST carries `X-OpenVBS-Signature: sha256=<hex>`, the HMAC-SHA256
// of the exact request body under the subscription's secret (returned once, when the subscription was made).
// A receiver recomputes it over the raw body and compares in constant time; `X-OpenVBS-Delivery` names the
// delivery (the same on every retry of it) so a receiver can drop repeats.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-OpenVBS-Signature';
export const DELIVERY_HEADER = 'X-OpenVBS-Delivery';
export const EVENT_HEADER = 'X-OpenVBS-Event';

export function webhookSignature(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function verifyWebhookSignature(secret: string, body: string | Uint8Array, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(webhookSignature(secret, body));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

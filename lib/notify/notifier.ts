// The notifier port. Every notification carries `project_id`, `event` and `status` attributes so a
// subscriber (an SNS subscription on AWS; locally the outbox file, later webhooks and email) can filter to
// one project, or to failures only. Adapters: lib/aws/sns-notifier.ts, lib/embedded/outbox-notifier.ts.

export type NotifyEvent = 'backup' | 'restore' | 'delete';
export type NotifyStatus = 'success' | 'failure';

export interface Notification {
  projectId: string;
  event: NotifyEvent;
  status: NotifyStatus;
  subject: string;
  /** Structured details (job id, backup id, reason...), sent as the JSON message body. */
  details: Record<string, unknown>;
}

export interface Notifier {
  publish(n: Notification): Promise<void>;
}

/** The attributes a subscriber filters on; the same for every adapter. */
export function notificationAttributes(n: Notification): { project_id: string; event: NotifyEvent; status: NotifyStatus } {
  return { project_id: n.projectId, event: n.event, status: n.status };
}

/** The message body (sent as JSON); the same for every adapter. */
export function notificationBody(n: Notification): Record<string, unknown> {
  return { ...notificationAttributes(n), ...n.details };
}

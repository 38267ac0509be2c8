// The notifier port. Every notification carries `project_id`, `event` and `status` attributes so a
// subscriber (an SNS subscription with a filter policy on AWS; locally the project's subscriptions and the
// outbox file) can filter to one project, or to failures only. Adapters: lib/aws/sns-notifier.ts,
// lib/embedded/outbox-notifier.ts. What a job's notification says is written by ./message.ts.

/** What ended. A new kind of job adds its event here and its entry in EVENT_TEXT (./message.ts). */
export const NOTIFY_EVENTS = ['backup', 'restore', 'delete', 'check', 'gc', 'policy'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
export const NOTIFY_STATUSES = ['success', 'failure'] as const;
export type NotifyStatus = (typeof NOTIFY_STATUSES)[number];

export interface Notification {
  projectId: string;
  event: NotifyEvent;
  status: NotifyStatus;
  /** One line: SNS's Subject, the email's subject. */
  subject: string;
  /** The readable body (email; SMS takes its first line). Absent: email and SMS get the JSON body. */
  text?: string;
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

/** The message body (sent as JSON: webhooks, SQS, SNS HTTPS); the same for every adapter. */
export function notificationBody(n: Notification): Record<string, unknown> {
  return { ...notificationAttributes(n), ...n.details };
}

/** The longest SMS text we send: one 160-character GSM segment would cut names, two are plenty. */
const SMS_MAX = 300;

/** The email body: the readable text, else the JSON body. */
export function emailText(n: Notification): string {
  return n.text ?? JSON.stringify(notificationBody(n), null, 2);
}

/** The SMS text: the subject and, on failure, the reason. */
export function smsText(n: Notification): string {
  const reason = typeof n.details.fail_reason === 'string' && n.details.fail_reason ? `: ${n.details.fail_reason}` : '';
  const text = `${n.subject}${reason}`;
  return text.length > SMS_MAX ? `${text.slice(0, SMS_MAX - 1)}…` : text;
}

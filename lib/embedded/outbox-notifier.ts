// Notifier for local mode. Every notification is first appended as one JSON line to an outbox file (mode 0600):
//   {"at", "project_id", "event", "status", "subject", "message": <the body SNS would send>, "attributes": {project_id, event, status}}
// Lines are written one at a time and fsynced, so they never interleave and survive a crash once published.
//
// Then, in the background (a delivery never holds up or fails the job), it goes to each confirmed subscription
// of the project that wants it (all notifications, or failures only), as SNS would deliver it:
//   https/http  POST of the JSON body (plus delivery_id, subscription_id), signed: X-OpenVBS-Signature
//               (lib/notify/webhook.ts); retried with exponential backoff on network errors, 408, 429 and 5xx
//   email       through the SMTP server the operator configures (OPENVBS_SMTP_URL, OPENVBS_SMTP_FROM); retried
//               the same way; without a server the email is recorded as undeliverable
//   sms         recorded only (no SMS gateway locally): the text a phone would get
// Every attempt's outcome is a line of the delivery log (deliveries.jsonl beside the outbox).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { appendFile, open } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { SubscriptionRecord } from '../catalog/subscriptions.ts';
import { emailText, notificationAttributes, notificationBody, smsText } from '../notify/notifier.ts';
import type { Notification, Notifier } from '../notify/notifier.ts';
import { subscriptionMatches } from '../notify/subscriptions.ts';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, webhookSignature } from '../notify/webhook.ts';
import { FILE_MODE, makeFolder, syncFolder } from './durable-file.ts';

export interface DeliverySettings {
  /** The SMTP server emails go through, as a URL: smtp://host:port, smtps://user:pass@host:465. */
  smtpUrl?: string;
  /** The From address of emails. Default `OpenVBS <openvbs@localhost>`. */
  smtpFrom?: string;
  /** CA certificates (PEM) trusted for HTTPS webhooks besides the public roots (a private CA, a test's). */
  webhookCa?: string;
  /** Attempts per delivery. Default 5. */
  attempts?: number;
  /** The wait after the first failed attempt, doubled after each further one (at most a minute). Default 2 s. */
  backoffMs?: number;
  /** One attempt's time limit. Default 10 s. */
  timeoutMs?: number;
}

/** From OPENVBS_SMTP_URL, OPENVBS_SMTP_FROM, OPENVBS_WEBHOOK_CA_FILE, OPENVBS_DELIVERY_ATTEMPTS, OPENVBS_DELIVERY_BACKOFF_MS. */
export function deliverySettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DeliverySettings {
  const int = (name: string) => {
    const raw = env[name];
    if (!raw) return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0`);
    return n;
  };
  const attempts = int('OPENVBS_DELIVERY_ATTEMPTS');
  const backoffMs = int('OPENVBS_DELIVERY_BACKOFF_MS');
  return {
    ...(env.OPENVBS_SMTP_URL ? { smtpUrl: env.OPENVBS_SMTP_URL } : {}),
    ...(env.OPENVBS_SMTP_FROM ? { smtpFrom: env.OPENVBS_SMTP_FROM } : {}),
    ...(env.OPENVBS_WEBHOOK_CA_FILE ? { webhookCa: readFileSync(env.OPENVBS_WEBHOOK_CA_FILE, 'utf8') } : {}),
    ...(attempts ? { attempts } : {}),
    ...(backoffMs !== undefined ? { backoffMs } : {}),
  };
}

export interface OutboxNotifierOptions {
  /** Where the project's subscriptions are found; without it the notifier only writes the outbox. */
  subscriptions?: { list(projectId: string): Promise<SubscriptionRecord[]> };
  /** The delivery log (JSON lines). Required with `subscriptions`. */
  deliveryLog?: string;
  delivery?: DeliverySettings;
}

/** One line of the delivery log. */
export interface DeliveryLogLine {
  at: string;
  delivery_id: string;
  subscription_id: string;
  project_id: string;
  protocol: SubscriptionRecord['protocol'];
  endpoint: string;
  attempt: number;
  /** delivered; retrying (another attempt follows); failed (no more attempts); recorded (SMS). */
  outcome: 'delivered' | 'retrying' | 'failed' | 'recorded';
  http_status?: number;
  error?: string;
  /** SMS: what the phone would have received. */
  text?: string;
}

/** An attempt that failed; `permanent`: retrying cannot help (a 4xx answer, a bad address). */
class AttemptError extends Error {
  override name = 'AttemptError';
  readonly permanent: boolean;
  readonly httpStatus: number | undefined;

  constructor(message: string, permanent: boolean, httpStatus?: number) {
    super(message);
    this.permanent = permanent;
    this.httpStatus = httpStatus;
  }
}

interface Mailer {
  sendMail(mail: { from: string; to: string; subject: string; text: string }): Promise<unknown>;
  close(): void;
}

const MAX_BACKOFF_MS = 60_000;

export class OutboxNotifier implements Notifier {
  readonly path: string;
  private readonly options: OutboxNotifierOptions;
  private tail: Promise<unknown> = Promise.resolve();
  private logTail: Promise<unknown> = Promise.resolve();
  /** Whether this instance has made the file's name durable in its folder. */
  private named = false;
  private readonly inFlight = new Set<Promise<void>>();
  private closing = false;
  private readonly sleepers = new Set<() => void>();
  private mailer: Promise<Mailer> | undefined;

  constructor(path: string, options: OutboxNotifierOptions = {}) {
    this.path = path;
    this.options = options;
  }

  publish(n: Notification): Promise<void> {
    const attributes = notificationAttributes(n);
    const line = JSON.stringify({ at: new Date().toISOString(), ...attributes, subject: n.subject, message: notificationBody(n), attributes });
    const appended = this.tail.then(() => this.append(`${line}\n`));
    this.tail = appended.catch(() => {});
    return appended.then(() => {
      if (this.options.subscriptions && !this.closing) this.track(this.deliverAll(n));
    });
  }

  /** Resolves when every delivery started so far has ended (delivered, or out of attempts). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Stops retrying; waits up to `graceMs` for attempts under way. */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    for (const wake of this.sleepers) wake();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((ok) => (timer = setTimeout(ok, graceMs)))]);
    clearTimeout(timer);
    if (this.mailer) (await this.mailer.catch(() => undefined))?.close();
  }

  private track(delivery: Promise<void>): void {
    const tracked = delivery.catch(() => {}).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async deliverAll(n: Notification): Promise<void> {
    const subscriptions = await this.options.subscriptions!.list(n.projectId);
    const targets = subscriptions.filter((s) => s.status === 'confirmed' && subscriptionMatches(s, n.projectId, n.status));
    await Promise.all(targets.map((s) => this.deliver(s, n)));
  }

  private async deliver(sub: SubscriptionRecord, n: Notification): Promise<void> {
    const deliveryId = randomUUID();
    const log = (attempt: number, outcome: DeliveryLogLine['outcome'], more: Partial<DeliveryLogLine> = {}) =>
      this.log({
        at: new Date().toISOString(),
        delivery_id: deliveryId,
        subscription_id: sub.subscriptionId,
        project_id: sub.projectId,
        protocol: sub.protocol,
        endpoint: sub.endpoint,
        attempt,
        outcome,
        ...more,
      });
    if (sub.protocol === 'sms') return log(1, 'recorded', { text: smsText(n) });

    const settings = this.options.delivery ?? {};
    const attempts = Math.max(1, settings.attempts ?? 5);
    const send =
      sub.protocol === 'email'
        ? () => this.sendEmail(sub, n)
        : (() => {
            const body = JSON.stringify({ ...notificationBody(n), delivery_id: deliveryId, subscription_id: sub.subscriptionId });
            return () => this.post(sub, n, deliveryId, body);
          })();
    for (let attempt = 1; ; attempt++) {
      try {
        const status = await send();
        return log(attempt, 'delivered', status !== undefined ? { http_status: status } : {});
      } catch (err) {
        const failure = err instanceof AttemptError ? err : new AttemptError(err instanceof Error ? err.message : String(err), false);
        const last = failure.permanent || attempt >= attempts || this.closing;
        await log(attempt, last ? 'failed' : 'retrying', { error: failure.message, ...(failure.httpStatus ? { http_status: failure.httpStatus } : {}) });
        if (last) return;
        await this.sleep(Math.min(MAX_BACKOFF_MS, (settings.backoffMs ?? 2_000) * 2 ** (attempt - 1)));
      }
    }
  }

  /** POSTs the body; resolves with the 2xx status. */
  private post(sub: SubscriptionRecord, n: Notification, deliveryId: string, body: string): Promise<number> {
    const url = new URL(sub.endpoint);
    const settings = this.options.delivery ?? {};
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      'User-Agent': 'OpenVBS-Notifier/1',
      [EVENT_HEADER]: `${n.event}.${n.status}`,
      [DELIVERY_HEADER]: deliveryId,
      ...(sub.secret ? { [SIGNATURE_HEADER]: webhookSignature(sub.secret, body) } : {}),
    };
    return new Promise<number>((ok, fail) => {
      const onResponse = (res: IncomingMessage) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) ok(status);
          // redirects are not followed (the signature is for this URL); other 4xx are the receiver saying no
          else fail(new AttemptError(`answered HTTP ${status}`, status < 500 && status !== 408 && status !== 429, status));
        });
        res.on('error', (err) => fail(new AttemptError(err.message, false)));
      };
      const timeout = settings.timeoutMs ?? 10_000;
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, { method: 'POST', headers, timeout, ...(settings.webhookCa ? { ca: [...rootCertificates, settings.webhookCa] } : {}) }, onResponse)
          : httpRequest(url, { method: 'POST', headers, timeout }, onResponse);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
      req.on('error', (err) => fail(new AttemptError(err.message, false)));
      req.end(body);
    });
  }

  private async sendEmail(sub: SubscriptionRecord, n: Notification): Promise<undefined> {
    const settings = this.options.delivery ?? {};
    if (!settings.smtpUrl) throw new AttemptError('no SMTP server configured (OPENVBS_SMTP_URL)', true);
    this.mailer ??= import('nodemailer').then((m) => m.default.createTransport(settings.smtpUrl) as unknown as Mailer);
    const mailer = await this.mailer;
    try {
      await mailer.sendMail({ from: settings.smtpFrom ?? 'OpenVBS <openvbs@localhost>', to: sub.endpoint, subject: n.subject, text: emailText(n) });
    } catch (err) {
      // 5xx SMTP replies (mailbox unknown, refused) are final; connection trouble and 4xx may pass
      const code = (err as { responseCode?: number }).responseCode;
      throw new AttemptError(err instanceof Error ? err.message : String(err), code !== undefined && code >= 500);
    }
    return undefined;
  }

  private sleep(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise<void>((ok) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        ok();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private log(line: DeliveryLogLine): Promise<void> {
    const path = this.options.deliveryLog;
    if (!path) return Promise.resolve();
    const written = this.logTail.then(() => appendFile(path, `${JSON.stringify(line)}\n`, { mode: FILE_MODE }));
    this.logTail = written.catch(() => {});
    return written.catch(() => {});
  }

  private async append(line: string): Promise<void> {
    if (!this.named) await makeFolder(dirname(this.path));
    const file = await open(this.path, 'a', FILE_MODE);
    try {
      await file.appendFile(line);
      await file.sync();
    } finally {
      await file.close();
    }
    if (!this.named) {
      await syncFolder(dirname(this.path));
      this.named = true;
    }
  }
}

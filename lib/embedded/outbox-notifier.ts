// Notifier for local mode: appends each notification as one JSON line to an outbox file (mode 0600):
//   {"at", "project_id", "event", "status", "subject", "message": <the body SNS would send>, "attributes": {project_id, event, status}}
// Lines are written one at a time and fsynced, so they never interleave and survive a crash once published.
// Delivery to webhooks or email will read from here, keeping the outbox the record of what was sent.
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { notificationAttributes, notificationBody } from '../notify/notifier.ts';
import type { Notification, Notifier } from '../notify/notifier.ts';
import { FILE_MODE, makeFolder, syncFolder } from './durable-file.ts';

export class OutboxNotifier implements Notifier {
  readonly path: string;
  private tail: Promise<unknown> = Promise.resolve();
  /** Whether this instance has made the file's name durable in its folder. */
  private named = false;

  constructor(path: string) {
    this.path = path;
  }

  publish(n: Notification): Promise<void> {
    const attributes = notificationAttributes(n);
    const line = JSON.stringify({ at: new Date().toISOString(), ...attributes, subject: n.subject, message: notificationBody(n), attributes });
    const appended = this.tail.then(() => this.append(`${line}\n`));
    this.tail = appended.catch(() => {});
    return appended;
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

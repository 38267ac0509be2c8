// `openvbs notify …`: who hears of the project's jobs (an admin token is needed). On AWS an email or HTTPS
// subscription stays pending until its owner confirms it (the link SNS mails; SNS's SubscriptionConfirmation
// request); locally it is confirmed at once, and a webhook's signing secret is shown once.
import { Option } from 'commander';
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { nonEmpty } from '../options.ts';
import { formatKeyValue, formatTable } from '../render.ts';

/** A subscription as the API shows it (`/v1/{project_id}/subscriptions`). */
export interface SubscriptionInfo {
  id: string;
  project_id: string;
  protocol: 'email' | 'sms' | 'https' | 'http';
  endpoint: string;
  failures_only: boolean;
  status: 'pending_confirmation' | 'confirmed' | 'expired';
  created_at: string;
  /** Only in the answer to the creation of a webhook delivered locally. */
  secret?: string;
}

const path = (cli: CliContext, rest = '') => `/v1/${encodeURIComponent(cli.client.project)}/subscriptions${rest}`;

export function formatSubscriptionTable(subscriptions: readonly SubscriptionInfo[]): string {
  return formatTable(
    ['ID', 'PROTOCOL', 'ENDPOINT', 'FAILURES ONLY', 'STATUS', 'CREATED'],
    subscriptions.map((s) => [s.id, s.protocol, s.endpoint, s.failures_only ? 'yes' : 'no', s.status, s.created_at]),
  );
}

export function registerNotifyCommands(program: Command, cli: CliContext): void {
  const notify = program.command('notify').description('notification subscriptions: email, SMS and webhooks of the project’s job results');

  notify
    .command('subscribe')
    .description('subscribe an email address, phone number (E.164, e.g. +4915112345678) or HTTPS URL to the project’s job notifications')
    .addOption(new Option('--protocol <protocol>', 'how to deliver (http only where the operator allows it)').choices(['email', 'sms', 'https', 'http']).makeOptionMandatory())
    .requiredOption('--endpoint <endpoint>', 'the address, number or URL', nonEmpty)
    .option('--failures-only', 'only failed jobs')
    .action(async (flags: { protocol: string; endpoint: string; failuresOnly?: boolean }) => {
      const res = await cli.client.request<{ subscription: SubscriptionInfo }>('POST', path(cli), {
        subscription: { protocol: flags.protocol, endpoint: flags.endpoint, ...(flags.failuresOnly ? { failures_only: true } : {}) },
      });
      cli.print(res, () => formatKeyValue({ ...res.subscription }));
      if (res.subscription.status === 'pending_confirmation') {
        cli.note(flags.protocol === 'email' ? 'check the mailbox: the subscription starts once the link in the confirmation email is followed' : 'the endpoint must confirm the subscription first');
      }
      if (res.subscription.secret) cli.note('the signing secret is shown only once: webhooks carry X-OpenVBS-Signature: sha256=<HMAC-SHA256 of the body under it>');
    });

  notify
    .command('list')
    .description('list the project’s subscriptions and their status')
    .action(async () => {
      const res = await cli.client.request<{ subscriptions: SubscriptionInfo[] }>('GET', path(cli));
      cli.print(res, () => formatSubscriptionTable(res.subscriptions ?? []));
      if (!res.subscriptions?.length) cli.note('no subscriptions');
    });

  notify
    .command('unsubscribe')
    .description('remove a subscription: no further notification reaches its endpoint')
    .argument('<id>', 'subscription id (from notify list)', nonEmpty)
    .action(async (id: string) => {
      await cli.client.request<undefined>('DELETE', path(cli, `/${encodeURIComponent(id)}`));
      if (!cli.json) cli.io.stdout.write(`subscription ${id} removed\n`);
    });
}

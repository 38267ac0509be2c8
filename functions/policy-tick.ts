// Periodic rule target (every 5 minutes, infra/constructs/schedules.ts): one pass of the policy tick over every
// project (lib/policies/tick.ts). Runs start ordinary backup jobs through the backup service, so this function
// needs to start the volume-backup and backup-delete state machines (retention deletes through backup-delete).
import { awsClients } from '../lib/aws/clients.ts';
import { createServices, quotasFromEnv } from '../lib/service/factory.ts';
import type { Services } from '../lib/service/factory.ts';
import { processRuntime } from '../lib/wiring/runtime.ts';
import { logger } from '../lib/workflows/observability.ts';
import { SfnWorkflowStarter } from '../lib/workflows/sfn-starter.ts';

let services: Promise<Services> | undefined;

async function build(): Promise<Services> {
  const runtime = await processRuntime();
  return createServices({
    stores: runtime.stores,
    keys: runtime.backend.keys,
    workflows: SfnWorkflowStarter.fromEnv(awsClients().sfn),
    provider: runtime.volumes,
    restoreNeedsStoppedServer: false,
    dataDir: process.env.OPENVBS_DATA_DIR ?? '/tmp/openvbs',
    allowPathRegistration: false,
    quotas: quotasFromEnv(),
    ...(runtime.backend.notifier ? { notifier: runtime.backend.notifier } : {}),
    ...(process.env.AWS_REGION ? { availabilityZone: process.env.AWS_REGION } : {}),
  });
}

export const handler = async (): Promise<{ runs: number; missed: number; settled: number }> => {
  services ??= build();
  const report = await (await services).policies.tickAll();
  const summary = { runs: report.runs.length, missed: report.missed.length, settled: report.settled.length };
  logger.info('policy tick', { at: report.at, ...summary, late: report.runs.filter((r) => r.late).map((r) => `${r.projectId}/${r.policyId}@${r.slot}`) });
  return summary;
};

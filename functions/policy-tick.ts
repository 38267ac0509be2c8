// Periodic rule target (every 5 minutes, infra/constructs/schedules.ts): one pass of the policy tick over every
// project (lib/policies/tick.ts). Runs start ordinary backup jobs through the backup services, so this function
// may start the volume-backup and server-backup state machines, and backup-delete and checkpoint-delete (retention).
import type { Services } from '../lib/service/factory.ts';
import { lambdaServices } from '../lib/wiring/lambda-services.ts';
import { logger } from '../lib/workflows/observability.ts';

let services: Promise<Services> | undefined;

export const handler = async (): Promise<{ runs: number; missed: number; settled: number }> => {
  services ??= lambdaServices();
  const report = await (await services).policies.tickAll();
  const summary = { runs: report.runs.length, missed: report.missed.length, settled: report.settled.length };
  logger.info('policy tick', { at: report.at, ...summary, late: report.runs.filter((r) => r.late).map((r) => `${r.projectId}/${r.policyId}@${r.slot}`) });
  return summary;
};

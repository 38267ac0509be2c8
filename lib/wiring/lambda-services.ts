// The services as the deployed functions build them (the api, the policy tick): the process runtime's stores
// and adapters, workflows started on Step Functions, EC2 instances that a restore stops itself, and no host paths.
import { awsClients } from '../aws/clients.ts';
import { createServices, quotasFromEnv } from '../service/factory.ts';
import type { Services } from '../service/factory.ts';
import { SfnWorkflowStarter } from '../workflows/sfn-starter.ts';
import { processRuntime } from './runtime.ts';

export async function lambdaServices(): Promise<Services> {
  const runtime = await processRuntime();
  return createServices({
    stores: runtime.stores,
    keys: runtime.backend.keys,
    workflows: SfnWorkflowStarter.fromEnv(awsClients().sfn),
    provider: runtime.volumes,
    restoreNeedsStoppedServer: false,
    // Volumes on AWS are not image files on this function's disk: never register host paths here.
    dataDir: process.env.OPENVBS_DATA_DIR ?? '/tmp/openvbs',
    allowPathRegistration: false,
    quotas: quotasFromEnv(),
    ...(runtime.backend.notifier ? { notifier: runtime.backend.notifier } : {}),
    ...(runtime.backend.subscriptions ? { subscriptionManager: runtime.backend.subscriptions } : {}),
    ...(process.env.AWS_REGION ? { availabilityZone: process.env.AWS_REGION } : {}),
  });
}

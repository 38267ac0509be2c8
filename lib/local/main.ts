// `npm start`: runs OpenVBS locally and prints how to reach it.
import { startLocalService } from './service.ts';

const service = await startLocalService({ port: process.env.PORT ? Number(process.env.PORT) : 8080 });
console.log(`OPENVBS_URL=${service.url}`);
console.log(`OPENVBS_PROJECT=${service.projectId}`);
console.log(`OPENVBS_TOKEN=${service.token}`);
console.log(`# AWS emulator at ${service.awsEndpoint}; state lasts until this process stops. Ctrl-C to stop.`);

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await service.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

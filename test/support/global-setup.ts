// Starts one moto emulator for the whole test run and stops it at the end, even when tests fail.
import type { TestProject } from 'vitest/node';
import { startMoto } from '../../scripts/moto.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const moto = await startMoto({ quiet: true });
  process.env.AWS_ENDPOINT_URL = moto.endpoint;
  project.provide('awsEndpoint', moto.endpoint);
  return async () => {
    await moto.stop();
  };
}

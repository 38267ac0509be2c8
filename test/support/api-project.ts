// One project on the REST API app for a test file: the service environment (real stores, recorded workflows),
// the app, an admin and a user token of the project, and a caller that sends the admin token unless told
// otherwise. Built in the file's beforeAll and closed in its afterAll; read the fields inside tests.
import { afterAll, beforeAll } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import type { ApiApp } from '../../lib/api/app.ts';
import { createServiceEnv } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';
import { appCaller } from './app-call.ts';

export interface ApiProject {
  env: ServiceEnv;
  app: ApiApp;
  adminToken: string;
  userToken: string;
  call: ReturnType<typeof appCaller>;
}

export function useApiProject(projectId: string): ApiProject {
  const project = {} as ApiProject;
  project.call = appCaller(() => project.app, () => project.adminToken);
  beforeAll(async () => {
    project.env = await createServiceEnv();
    project.app = createApiApp(project.env.services, { logger: { error: () => undefined } });
    project.adminToken = (await project.env.services.tokens.create(projectId)).token;
    project.userToken = (await project.env.services.tokens.create(projectId, { scope: 'user' })).token;
  });
  afterAll(async () => project.env?.close());
  return project;
}

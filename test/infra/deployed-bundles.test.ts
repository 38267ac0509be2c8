// What is deployed is what is tested: the stack synthesized as `cdk synth` builds it (every handler bundled by
// esbuild into the cloud assembly), and each workflow run end to end through those bundles alone. Every Lambda
// function runs as its bundle file in its own processes (test/support/lambda-host.ts), started in its asset
// folder with the environment the template gives it (Ref / Fn::GetAtt resolved to resources provisioned on the
// emulator) plus what Lambda itself adds (region, credentials; here the emulator's endpoint). Requests go through
// the bundled authorizer and api functions as API Gateway sends them; the api starts executions on the emulator's
// Step Functions, and each execution then runs here on the synthesized definition (aws-local-stepfunctions, as
// the local runtime runs it), every Task invoking the bundled function of its state. A failed execution goes to
// the bundled execution-failed function, as the EventBridge rule sends it.
//
// Volumes: where the stack's functions name a volume provider other than `file` (OPENVBS_VOLUME_PROVIDER=ebs),
// they run here with the file provider (the emulator's EBS volumes hold no data to back up or compare): a volume
// is an image file the bundled api creates under a temporary OPENVBS_DATA_DIR (added to the api's environment).
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateStateMachineCommand, DescribeExecutionCommand, ListExecutionsCommand } from '@aws-sdk/client-sfn';
import type { APIGatewayAuthorizerResult, APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import type { RunOptions, StateMachineDefinition } from 'aws-local-stepfunctions';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { workflowDefinitions } from '../../infra/synth.ts';
import { STORAGE_LOGICAL_IDS } from '../../infra/constructs/storage.ts';
import { createClients } from '../../lib/aws/clients.ts';
import type { AwsClients } from '../../lib/aws/clients.ts';
import type { AwsServiceConfig } from '../../lib/config.ts';
import { localStateMachine } from '../../lib/local/local-workflows.ts';
import type { LocalStateMachine } from '../../lib/local/local-workflows.ts';
import { provisionLocalResources } from '../../lib/local/provision.ts';
import { openRuntime } from '../../lib/wiring/runtime.ts';
import { VOLUME_PROVIDER_ENV } from '../../lib/wiring/volumes.ts';
import { HANDLER_NAMES, WORKFLOWS, WORKFLOW_NAMES, stateMachineLogicalId } from '../../lib/workflows/registry.ts';
import { CSBS_PROVIDER_ID } from '../../lib/service/server-backups.ts';
import type { WorkflowName } from '../../lib/workflows/registry.ts';
import type { ApiAnswer } from '../support/api-call.ts';
import { BundledLambdas } from '../support/bundled-lambdas.ts';
import type { BundledFunctionSpec } from '../support/bundled-lambdas.ts';
import type { DeployedFunction, DeployedStack, Intrinsics } from '../support/deployed-stack.ts';
import { pseudoParameters, resolveEnvironment, synthesizeDeployedStack, vcpusFor } from '../support/deployed-stack.ts';
import { scatterWrites, sha256File, writeDiskImage } from '../support/disk-image.ts';

const REGION = 'us-east-1';
const MiB = 1024 * 1024;
const SIZE = 24 * MiB + 4096; // a partial last block
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Workflows this test knows how to start through the API; the others are listed as not run. */
const SCENARIOS: Partial<Record<string, string>> = {
  'volume-backup': 'POST /v2/{project}/cloudbackups',
  'volume-restore': 'POST /v2/{project}/cloudbackups/{backup}/restore',
  'backup-delete': 'POST /v2/{project}/cloudbackups/{backup}',
  'server-backup': 'POST /v1/{project}/providers/{provider}/resources/{server}/action',
  'server-restore': 'POST /v1/{project}/restores',
  'checkpoint-delete': 'DELETE /v1/{project}/providers/{provider}/checkpoints/{checkpoint}',
};

type Ran = { workflow: WorkflowName; name: string; status: 'SUCCEEDED' | 'FAILED'; error?: string };

let stack: DeployedStack;
let clients: AwsClients;
let config: AwsServiceConfig;
let lambdas: BundledLambdas;
let envs: Map<string, Record<string, string>>;
let machines: Record<WorkflowName, LocalStateMachine & { arn: string }>;
let dataDir: string;
let projectId: string;
let token: string;
let queueUrl: string;
const ranExecutions = new Set<string>();
const ranWorkflows = new Set<WorkflowName>();
/** Volume providers the stack names that this test replaced by the file provider. */
const providerOverrides = new Set<string>();

function fn(name: string): DeployedFunction {
  const f = stack.functions.get(name);
  if (!f) throw new Error(`the stack has no function for handler ${name}`);
  return f;
}

beforeAll(async () => {
  stack = synthesizeDeployedStack();
  clients = createClients();
  const prefix = `d${randomBytes(4).toString('hex')}`;
  config = await provisionLocalResources(clients, prefix);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'openvbs-deployed-data-'));
  fs.mkdirSync(path.join(dataDir, 'tmp'));

  // The state machines exist on the emulator so the api's StartExecution lands somewhere; they run here.
  const definitions = workflowDefinitions(stack.template);
  machines = {} as typeof machines;
  const stateMachineRefs: Record<string, string> = {};
  for (const workflow of WORKFLOW_NAMES) {
    const created = await clients.sfn.send(
      new CreateStateMachineCommand({
        name: `${prefix}-${WORKFLOWS[workflow].id}`,
        definition: JSON.stringify(definitions[workflow]),
        roleArn: 'arn:aws:iam::123456789012:role/openvbs-states',
      }),
    );
    machines[workflow] = { ...localStateMachine(definitions[workflow]), arn: created.stateMachineArn! };
    stateMachineRefs[stateMachineLogicalId(workflow)] = created.stateMachineArn!;
  }
  const ids = STORAGE_LOGICAL_IDS;
  const values: Intrinsics = {
    refs: {
      ...pseudoParameters(REGION),
      [ids.bucket]: config.bucket,
      [ids.catalogTable]: config.catalogTable,
      [ids.chunkTable]: config.chunkTable,
      [ids.topic]: config.topicArn!,
      [ids.key]: config.serviceKeyId.split('/').pop()!,
      ...stateMachineRefs,
    },
    attributes: {
      [`${ids.key}.Arn`]: config.serviceKeyId,
      [`${ids.bucket}.Arn`]: `arn:aws:s3:::${config.bucket}`,
      [`${ids.catalogTable}.Arn`]: `arn:aws:dynamodb:${REGION}:123456789012:table/${config.catalogTable}`,
      [`${ids.chunkTable}.Arn`]: `arn:aws:dynamodb:${REGION}:123456789012:table/${config.chunkTable}`,
    },
  };
  envs = new Map();
  const specs: BundledFunctionSpec[] = [];
  for (const f of stack.functions.values()) {
    const env: Record<string, string> = {
      ...resolveEnvironment(f, values),
      // What Lambda adds (AWS_EXECUTION_ENV left out: it would turn X-Ray tracing on with no daemon to send to).
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_LAMBDA_FUNCTION_NAME: `OpenVbsStack-${f.logicalId}`,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(f.memoryMb),
      AWS_LAMBDA_FUNCTION_TIMEOUT: String(f.timeoutSeconds),
      LAMBDA_TASK_ROOT: f.assetDir,
      TZ: ':UTC',
      PATH: '/usr/local/bin:/usr/bin:/bin',
      // ... and the emulator instead of AWS.
      AWS_ENDPOINT_URL: inject('awsEndpoint'),
      ...(f.handlerName === 'api' ? { OPENVBS_DATA_DIR: dataDir } : {}),
      // Lambda's /tmp; one for all functions, as the file provider's group snapshots must be seen by each step.
      TMPDIR: path.join(dataDir, 'tmp'),
    };
    // The stack's functions read EC2/EBS volumes; the emulator's EBS volumes hold no data to back up or compare,
    // so every function here uses the file provider, over image files the bundled api creates.
    const provider = env[VOLUME_PROVIDER_ENV];
    if (provider !== undefined && provider !== 'file') {
      providerOverrides.add(provider);
      env[VOLUME_PROVIDER_ENV] = 'file';
    }
    envs.set(f.handlerName, env);
    specs.push({ name: f.handlerName, assetDir: f.assetDir, entryFile: f.entryFile, exportName: f.exportName, env });
  }
  lambdas = new BundledLambdas(specs);

  // The catalog's first token, as an operator creates it after deploying; and a queue on the topic to see notifications.
  const admin = await openRuntime(config, { clients });
  projectId = randomBytes(16).toString('hex');
  token = (await admin.stores.tokens.issue(projectId)).token;
  await admin.close();
  queueUrl = (await clients.sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-events` }))).QueueUrl!;
  const queueArn = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await clients.sns.send(new SubscribeCommand({ TopicArn: config.topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' } }));
}, 300_000);

afterAll(async () => {
  await lambdas?.close();
  stack?.dispose();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A request as API Gateway hands it on: the authorizer's answer for the token, then the proxy event to the api. */
async function api(method: string, route: string, body?: unknown): Promise<ApiAnswer> {
  const methodArn = `arn:aws:execute-api:${REGION}:123456789012:abc123/api/${method}${route}`;
  const auth = (await lambdas.invoke('authorizer', { type: 'TOKEN', authorizationToken: token, methodArn })) as APIGatewayAuthorizerResult;
  expect(auth.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
  const event = {
    resource: '/{proxy+}',
    path: route,
    httpMethod: method,
    headers: { Host: 'abc123.execute-api.us-east-1.amazonaws.com', 'X-Auth-Token': token, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: route.slice(1) },
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      stage: 'api',
      httpMethod: method,
      path: `/api${route}`,
      protocol: 'HTTP/1.1',
      requestId: randomBytes(8).toString('hex'),
      requestTimeEpoch: Date.now(),
      resourceId: 'r1',
      resourcePath: '/{proxy+}',
      identity: { sourceIp: '127.0.0.1' },
      authorizer: { ...auth.context, principalId: auth.principalId },
    },
  } as unknown as APIGatewayProxyEvent;
  const res = (await lambdas.invoke('api', event)) as APIGatewayProxyResult;
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;

/** Runs every execution the api has started on the emulator since the last call, as Step Functions would. */
async function runStartedExecutions(): Promise<Ran[]> {
  const ran: Ran[] = [];
  for (const workflow of WORKFLOW_NAMES) {
    const machine = machines[workflow];
    const listed = await clients.sfn.send(new ListExecutionsCommand({ stateMachineArn: machine.arn }));
    for (const execution of listed.executions ?? []) {
      if (ranExecutions.has(execution.executionArn!)) continue;
      ranExecutions.add(execution.executionArn!);
      const described = await clients.sfn.send(new DescribeExecutionCommand({ executionArn: execution.executionArn }));
      const input = JSON.parse(described.input ?? '{}') as Record<string, unknown>;
      const handlers: LocalHandlers = {};
      for (const [state, handler] of Object.entries(machine.taskHandlers)) handlers[state] = ((event: unknown) => lambdas.invoke(handler, event)) as LocalHandlers[string];
      const sm = new StateMachine(machine.definition as unknown as StateMachineDefinition, { validationOptions: { checkPaths: false } });
      try {
        await sm.run(input as never, { overrides: { taskResourceLocalHandlers: handlers } }).result;
        ran.push({ workflow, name: execution.name!, status: 'SUCCEEDED' });
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        // The EventBridge rule hands a failed execution to execution-failed.
        await lambdas.invoke('execution-failed', {
          source: 'aws.states',
          'detail-type': 'Step Functions Execution Status Change',
          detail: { executionArn: execution.executionArn, stateMachineArn: machine.arn, status: 'FAILED', input: JSON.stringify(input), error: error.name, cause: error.message },
        });
        ran.push({ workflow, name: execution.name!, status: 'FAILED', error: `${error.name}: ${error.message}` });
      }
      ranWorkflows.add(workflow);
    }
  }
  return ran;
}

/** The job's execution, run to its end; the job as the api reports it then. */
async function runJob(jobId: string, workflow: WorkflowName) {
  const ran = await runStartedExecutions();
  const job = await api('GET', `/v1/${projectId}/jobs/${jobId}`);
  expect(job.status).toBe(200);
  expect(ran.map((r) => ({ workflow: r.workflow, status: r.status, error: r.error })), `job ${JSON.stringify(job.body)}`).toEqual([{ workflow, status: 'SUCCEEDED', error: undefined }]);
  return job.body;
}

/** The job's execution fails; its failure path ran through the bundles and the job ended FAIL with a reason. */
async function expectFailedJob(jobId: string, workflow: WorkflowName, failStep: string, event: string) {
  const before = lambdas.invocations.length;
  const ran = await runStartedExecutions();
  expect(ran.map((r) => ({ workflow: r.workflow, status: r.status }))).toEqual([{ workflow, status: 'FAILED' }]);
  const invoked = lambdas.invocations.slice(before).map(([name]) => name);
  expect(invoked).toContain(failStep);
  expect(invoked).toContain('execution-failed');
  const job = await api('GET', `/v1/${projectId}/jobs/${jobId}`);
  expect(job.body.status, JSON.stringify(job.body)).toBe('FAIL');
  expect(job.body.fail_reason).toBeTruthy();
  expect(await notifications()).toContainEqual(expect.objectContaining({ project_id: projectId, event, status: 'failure' }));
}

async function createVolume(name: string) {
  const res = await api('POST', `/v2/${projectId}/volumes`, { volume: { name, size_bytes: SIZE } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const volume = res.body.volume as { id: string; path: string };
  expect(path.resolve(volume.path).startsWith(dataDir + path.sep)).toBe(true);
  return volume;
}

async function backup(volumeId: string, name: string) {
  const res = await api('POST', `/v2/${projectId}/cloudbackups`, { backup: { volume_id: volumeId, name } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const job = await runJob(res.body.job_id, 'volume-backup');
  expect(job.status, JSON.stringify(job)).toBe('SUCCESS');
  const shown = await api('GET', `/v2/${projectId}/backups/${job.entities.backup_id}`);
  expect(shown.status).toBe(200);
  expect(shown.body.backup.status).toBe('available');
  return shown.body.backup as { id: string; is_incremental: boolean; 'os-openvbs-bak-stats-attr:stats': { stored_bytes: number; reused_blocks: number } };
}

async function restore(backupId: string, targetId: string) {
  const res = await api('POST', `/v2/${projectId}/cloudbackups/${backupId}/restore`, { restore: { volume_id: targetId } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const job = await runJob(res.body.job_id, 'volume-restore');
  expect(job.status, JSON.stringify(job)).toBe('SUCCESS');
}

async function notifications(): Promise<Array<Record<string, string>>> {
  const out: Array<Record<string, string>> = [];
  for (;;) {
    const res = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
    if (!res.Messages?.length) return out;
    for (const m of res.Messages) out.push(Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ''])));
  }
}

describe('the synthesized cloud assembly', () => {
  it('bundles every handler of the registry into its own asset folder, outside the source tree', () => {
    expect([...stack.functions.keys()].sort()).toEqual([...HANDLER_NAMES].sort());
    for (const f of stack.functions.values()) {
      expect(f.assetDir.startsWith(REPO)).toBe(false);
      expect(fs.statSync(f.entryFile).size).toBeGreaterThan(0);
      // The bundle is self-contained: no import of anything but Node's own modules.
      const code = fs.readFileSync(f.entryFile, 'utf8');
      const statics = [...code.matchAll(/(?:^|[;\s}])(?:import|export)\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+)["']/g)].map((m) => m[1]!);
      const dynamics = [...code.matchAll(/\bimport\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]!);
      expect(statics.length).toBeGreaterThan(0);
      expect([...statics, ...dynamics].filter((spec) => !isBuiltin(spec)), f.handlerName).toEqual([]);
    }
  });

  it('gives a function with more than one vCPU a chunk worker pool, never inline work', () => {
    for (const f of stack.functions.values()) {
      const workers = f.environment.OPENVBS_CHUNK_WORKERS;
      if (vcpusFor(f.memoryMb) > 1) expect(workers === undefined || Number(workers) >= vcpusFor(f.memoryMb), `${f.handlerName}: ${f.memoryMb} MB, OPENVBS_CHUNK_WORKERS=${String(workers)}`).toBe(true);
    }
  });
});

describe('every workflow end to end through the bundled handlers', () => {
  let source: { id: string; path: string };
  let first: Awaited<ReturnType<typeof backup>>;
  let firstSha: string;
  let second: Awaited<ReturnType<typeof backup>>;
  let secondSha: string;

  it('backs a volume up (volume-backup): the catalog shows the backup available and the topic tells', async () => {
    source = await createVolume('deployed-source');
    await writeDiskImage(source.path, SIZE, 11);
    firstSha = await sha256File(source.path);
    first = await backup(source.id, 'deployed-first');
    expect(first['os-openvbs-bak-stats-attr:stats'].stored_bytes).toBeGreaterThan(0);
    const events = await notifications();
    expect(events).toContainEqual(expect.objectContaining({ project_id: projectId, event: 'backup', status: 'success' }));
  });

  it('restores it bit for bit onto another volume (volume-restore)', async () => {
    const target = await createVolume('deployed-target');
    await restore(first.id, target.id);
    expect(await sha256File(target.path)).toBe(firstSha);
  });

  it('backs up and restores with the chunk worker pool a function of two or more vCPUs starts from its bundled worker file', async () => {
    for (const name of ['backup-segment', 'restore-segment']) {
      const f = fn(name);
      const size = Math.max(2, vcpusFor(f.memoryMb));
      await lambdas.reconfigure(name, { ...envs.get(name)!, OPENVBS_CHUNK_WORKERS: String(size), AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(Math.max(f.memoryMb, size * 1769)) });
    }
    await scatterWrites(source.path, SIZE, 512 * 1024, 0.25, 5);
    secondSha = await sha256File(source.path);
    second = await backup(source.id, 'deployed-pooled');
    expect(second.is_incremental).toBe(true);
    const target = await createVolume('deployed-pooled-target');
    await restore(second.id, target.id);
    expect(await sha256File(target.path)).toBe(secondSha);

    for (const name of ['backup-segment', 'restore-segment']) {
      const f = fn(name);
      const started = lambdas.workers(name);
      expect(started.length).toBeGreaterThan(0);
      for (const workers of started) {
        expect(workers).toHaveLength(Math.max(2, vcpusFor(f.memoryMb)));
        for (const w of workers) {
          expect(w.error, `${name}: worker ${w.file}`).toBeUndefined();
          expect(w.online).toBe(true);
          const file = fileURLToPath(w.file);
          expect(path.dirname(file)).toBe(f.assetDir);
          expect(fs.existsSync(file)).toBe(true);
        }
      }
    }
  });

  it('deletes a backup (backup-delete): the catalog no longer lists it, and the later backup still restores', async () => {
    const res = await api('POST', `/v2/${projectId}/cloudbackups/${first.id}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const job = await runJob(res.body.job_id, 'backup-delete');
    expect(job.status, JSON.stringify(job)).toBe('SUCCESS');
    expect((await api('GET', `/v2/${projectId}/backups/${first.id}`)).status).toBe(404);
    const target = await createVolume('deployed-after-delete');
    await restore(second.id, target.id);
    expect(await sha256File(target.path)).toBe(secondSha);
  });

  it('ends a backup whose volume vanished FAIL through the failure path (backup-fail, notify, execution-failed)', async () => {
    const vanishing = await createVolume('deployed-vanishing');
    const res = await api('POST', `/v2/${projectId}/cloudbackups`, { backup: { volume_id: vanishing.id, name: 'deployed-doomed' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await rm(vanishing.path);
    await expectFailedJob(res.body.job_id, 'volume-backup', 'backup-fail', 'backup');
  });

  it('ends a restore whose target vanished FAIL through the failure path (restore-fail, notify, execution-failed)', async () => {
    const target = await createVolume('deployed-vanishing-target');
    const res = await api('POST', `/v2/${projectId}/cloudbackups/${second.id}/restore`, { restore: { volume_id: target.id } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await rm(target.path);
    await expectFailedJob(res.body.job_id, 'volume-restore', 'restore-fail', 'restore');
  });

  it('backs a server up, restores it and deletes the checkpoint (server-backup, server-restore, checkpoint-delete)', async () => {
    const disks = [await createVolume('deployed-disk-a'), await createVolume('deployed-disk-b')];
    for (const [i, d] of disks.entries()) await writeDiskImage(d.path, SIZE, 60 + i);
    const sums = await Promise.all(disks.map((d) => sha256File(d.path)));
    const server = await api('POST', `/v1/${projectId}/servers`, { server: { name: 'deployed-server', status: 'stopped', disks: disks.map((d) => ({ volume_id: d.id })) } });
    expect(server.status, JSON.stringify(server.body)).toBe(201);
    const serverId = server.body.server.id as string;

    const protect = await api('POST', `/v1/${projectId}/providers/${CSBS_PROVIDER_ID}/resources/${serverId}/action`, { protect: { backup_name: 'deployed_server' } });
    expect(protect.status, JSON.stringify(protect.body)).toBe(200);
    const checkpointId = protect.body.checkpoint.id as string;
    expect((await runJob(protect.body.checkpoint.extra_info.job_id, 'server-backup')).status).toBe('SUCCESS');
    const item = (await api('GET', `/v1/${projectId}/checkpoint_items?checkpoint_id=${checkpointId}`)).body.checkpoint_items[0];
    expect(item.status).toBe('available');

    for (const d of disks) await scatterWrites(d.path, SIZE, 512 * 1024, 0.5, 9);
    const restore = await api('POST', `/v1/${projectId}/restores`, { restore: { provider_id: CSBS_PROVIDER_ID, checkpoint_id: checkpointId, parameters: { checkpoint_item_id: item.id, power_on: false } } });
    expect(restore.status, JSON.stringify(restore.body)).toBe(200);
    expect((await runJob(restore.body.restore.id, 'server-restore')).status).toBe('SUCCESS');
    expect(await Promise.all(disks.map((d) => sha256File(d.path)))).toEqual(sums);

    const del = await api('DELETE', `/v1/${projectId}/providers/${CSBS_PROVIDER_ID}/checkpoints/${checkpointId}`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    expect((await runJob(del.body.job_id, 'checkpoint-delete')).status).toBe('SUCCESS');
    expect((await api('GET', `/v1/${projectId}/checkpoint_items?checkpoint_id=${checkpointId}`)).body.checkpoint_items).toEqual([]);
  });

  it('ran every workflow of the registry it can start; says which it could not and why', () => {
    const notRun = WORKFLOW_NAMES.filter((w) => !ranWorkflows.has(w));
    for (const w of notRun) {
      console.warn(`deployed-bundles: workflow ${w} not run through the bundles: ${SCENARIOS[w] ? 'its scenario did not start it' : 'this test has no scenario that starts it through the API yet'}`);
    }
    for (const provider of providerOverrides) console.warn(`deployed-bundles: the stack sets ${VOLUME_PROVIDER_ENV}=${provider}; the bundles ran with the file provider over temporary image files`);
    // Every workflow with a scenario ran; those without one are only reported.
    expect(notRun.filter((w) => SCENARIOS[w])).toEqual([]);
  });
});

// A test double of the OpenVBS HTTP API for the CLI tests: node:http on 127.0.0.1, just the endpoints
// the CLI calls, with the request and response shapes of docs/service-contract.md. Jobs follow a
// script: every GET of a job returns its next state (the last one repeats). Each instance has its own
// volumes, keys and tokens. The real server is tested end to end elsewhere.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const PROJECT = 'proj-0001';
export const TOKEN = 'tok-secret-0001';
const GB = 1024 ** 3;

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  token: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

type JobState = Record<string, unknown>;

export interface FakeApi {
  url: string;
  requests: RecordedRequest[];
  /** Job scripts by job id (states returned by successive GETs). */
  jobs: Map<string, { script: JobState[]; polls: number }>;
  volumes: Volume[];
  keys: Key[];
  /** Adds a job with a script; returns its id. */
  addJob(script: JobState[]): string;
  close(): Promise<void>;
}

const MB = 1e6;

function jobBase(jobId: string, jobType: string, entities: Record<string, string>): JobState {
  return {
    job_id: jobId,
    job_type: jobType,
    status: 'INIT',
    begin_time: null,
    end_time: null,
    error_code: null,
    fail_reason: null,
    entities,
    sub_jobs: [],
    progress: 0,
    bytes_done: 0,
    bytes_total: 0,
  };
}

/** INIT -> RUNNING 0 % -> RUNNING 50 % -> SUCCESS, over 200 MB. */
export function successScript(jobId: string, jobType: string, entities: Record<string, string>): JobState[] {
  const base = jobBase(jobId, jobType, entities);
  const begin = '2025-01-01T10:00:00.000Z';
  return [
    base,
    { ...base, status: 'RUNNING', begin_time: begin, bytes_total: 200 * MB },
    { ...base, status: 'RUNNING', begin_time: begin, progress: 50, bytes_done: 100 * MB, bytes_total: 200 * MB },
    { ...base, status: 'SUCCESS', begin_time: begin, end_time: '2025-01-01T10:00:04.000Z', progress: 100, bytes_done: 200 * MB, bytes_total: 200 * MB },
  ];
}

/** INIT -> RUNNING -> FAIL with a reason. */
export function failScript(jobId: string, jobType: string, entities: Record<string, string>): JobState[] {
  const base = jobBase(jobId, jobType, entities);
  const begin = '2025-01-01T10:00:00.000Z';
  return [
    base,
    { ...base, status: 'RUNNING', begin_time: begin, bytes_total: 200 * MB },
    {
      ...base,
      status: 'FAIL',
      begin_time: begin,
      end_time: '2025-01-01T10:00:02.000Z',
      error_code: 'VolumeBackup.0013',
      fail_reason: 'volume read failed at block 42: EIO',
      bytes_total: 200 * MB,
    },
  ];
}

type Volume = (typeof initialVolumes)[number];

interface TokenInfo {
  id: string;
  project_id: string;
  scope: 'admin' | 'user';
  description: string | null;
  created_at: string;
  expires_at: string | null;
}

interface Key {
  id: string;
  arn: string;
  alias: string | null;
  description: string | null;
  enabled: boolean;
  created_at: string;
}

const initialVolumes = [
  {
    id: 'vol-1',
    name: 'data',
    status: 'available',
    size: 1,
    size_bytes: GB,
    path: '/data/vol-1.img',
    encrypted: false,
    kms_key_id: null,
    created_at: '2025-01-01T09:00:00.000Z',
    updated_at: '2025-01-01T09:00:00.000Z',
  },
  {
    id: 'vol-broken',
    name: 'broken-disk',
    status: 'available',
    size: 1,
    size_bytes: GB,
    path: '/data/vol-broken.img',
    encrypted: false,
    kms_key_id: null,
    created_at: '2025-01-01T09:00:00.000Z',
    updated_at: '2025-01-01T09:00:00.000Z',
  },
];

/** What a backup cost, as the API shows it beside the VBS fields (and as strings in service_metadata). */
interface Cost {
  stored_bytes: number;
  new_chunks: number;
  reused_blocks: number;
  dedup_blocks: number;
  zero_blocks: number;
  parent_backup_id: string | null;
}

function backup(id: string, name: string, cost: Cost) {
  const incremental = cost.parent_backup_id !== null;
  const metadata = { Type: incremental ? '1' : '0', ST: '0', progress: '100', bootable: 'false' };
  return {
    id,
    name,
    status: 'available',
    description: null,
    availability_zone: 'local',
    volume_id: 'vol-1',
    fail_reason: null,
    size: 1,
    object_count: 3,
    container: 'openvbs',
    created_at: '2025-01-01T10:00:00.000Z',
    updated_at: '2025-01-01T10:00:04.000Z',
    data_timestamp: '2025-01-01T10:00:00.000Z',
    'os-bak-tenant-attr:tenant_id': PROJECT,
    service_metadata: JSON.stringify({ ...metadata, ...Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, v === null ? '' : String(v)])) }),
    has_dependent_backups: false,
    snapshot_id: null,
    is_incremental: incremental,
    links: [],
    'os-openvbs-bak-stats-attr:stats': { ...cost, blocks: 2048, logical_bytes: 130 * MB, packs_written: incremental ? 1 : 8 },
  };
}

const backups = [
  backup('bk-1', 'nightly-1', { stored_bytes: 123_456_789, new_chunks: 240, reused_blocks: 0, dedup_blocks: 8, zero_blocks: 1800, parent_backup_id: null }),
  backup('bk-2', 'nightly-2', { stored_bytes: 4_200_000, new_chunks: 9, reused_blocks: 236, dedup_blocks: 3, zero_blocks: 1800, parent_backup_id: 'bk-1' }),
];

function send(res: ServerResponse, status: number, body?: unknown) {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

const error = (res: ServerResponse, status: number, code: string, message: string) => send(res, status, { error: { code, message } });

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function startFakeApi(): Promise<FakeApi> {
  const requests: RecordedRequest[] = [];
  const jobs = new Map<string, { script: JobState[]; polls: number }>();
  let nextJob = 1;
  const addJob = (script: JobState[]) => {
    const id = String(script[0]?.job_id ?? `job-${nextJob++}`);
    jobs.set(id, { script, polls: 0 });
    return id;
  };
  const newJobId = () => `job-${nextJob++}`;
  const volumes: Volume[] = initialVolumes.map((v) => ({ ...v }));
  const keys: Key[] = [];
  const tokens: TokenInfo[] = [
    { id: 'tk-1', project_id: PROJECT, scope: 'admin', description: 'local runtime default', created_at: '2025-01-01T10:00:00.000Z', expires_at: null },
  ];

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const body = await readBody(req);
      const token = req.headers['x-auth-token'];
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        token: typeof token === 'string' ? token : undefined,
        contentType: req.headers['content-type'],
        body,
      });
      if (token !== TOKEN) return error(res, 401, 'OpenVBS.0401', 'missing or invalid X-Auth-Token');
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      const [version, project, ...rest] = parts;
      if (project !== PROJECT) return error(res, 404, 'OpenVBS.0404', 'not found');
      const route = `${req.method} /${version}/${rest.map((p, i) => (i % 2 === 1 && !(rest[0] === 'backups' && p === 'detail') ? ':id' : p)).join('/')}`;
      const id = rest[1];
      const b = (body ?? {}) as Record<string, Record<string, unknown>>;

      switch (route) {
        case 'POST /v1/tokens': {
          const t = b.token ?? {};
          if (t.scope !== undefined && t.scope !== 'admin' && t.scope !== 'user') return error(res, 400, 'VolumeBackup.0002', 'token.scope: invalid option');
          const info: TokenInfo = {
            id: `tk-${tokens.length + 1}`,
            project_id: PROJECT,
            scope: t.scope === 'admin' ? 'admin' : 'user',
            description: typeof t.description === 'string' ? t.description : null,
            created_at: '2025-01-01T11:00:00.000Z',
            expires_at: typeof t.expires_in === 'number' ? new Date(Date.parse('2025-01-01T11:00:00.000Z') + t.expires_in * 1000).toISOString() : null,
          };
          tokens.push(info);
          return send(res, 201, { token: { ...info, token: 'tok-new-secret' } });
        }
        case 'GET /v1/tokens':
          return send(res, 200, { tokens });
        case 'POST /v1/subscriptions': {
          const s = b.subscription ?? {};
          const made = { id: `sub-${requests.length}`, project_id: PROJECT, protocol: s.protocol, endpoint: s.endpoint, failures_only: s.failures_only === true, status: 'confirmed', created_at: '2025-01-01T11:00:00.000000' };
          return send(res, 201, { subscription: made });
        }
        case 'GET /v1/subscriptions':
          return send(res, 200, { subscriptions: [] });
        case 'DELETE /v1/subscriptions/:id':
          return send(res, 204);
        case 'DELETE /v1/tokens/:id': {
          const i = tokens.findIndex((x) => x.id === id);
          if (i < 0) return error(res, 404, 'OpenVBS.0404', `token ${id} not found`);
          tokens.splice(i, 1);
          return send(res, 204);
        }
        case 'POST /v2/volumes': {
          const v = b.volume ?? {};
          if (typeof v.name !== 'string') return error(res, 400, 'VolumeBackup.0002', 'volume.name is required');
          if (v.size !== undefined && (typeof v.size !== 'number' || v.size > 1024)) {
            return error(res, 400, 'OpenVBS.1101', 'size must be between 1 and 1024 GB');
          }
          const sizeBytes = typeof v.size_bytes === 'number' ? v.size_bytes : typeof v.size === 'number' ? v.size * GB : GB;
          return send(res, 200, {
            volume: {
              id: 'vol-new',
              name: v.name,
              status: 'available',
              size: Math.ceil(sizeBytes / GB),
              size_bytes: sizeBytes,
              path: typeof v.path === 'string' ? v.path : '/data/vol-new.img',
              encrypted: typeof v.kms_key_id === 'string',
              kms_key_id: v.kms_key_id ?? null,
              created_at: '2025-01-01T11:00:00.000Z',
              updated_at: '2025-01-01T11:00:00.000Z',
            },
          });
        }
        case 'GET /v2/volumes':
          return send(res, 200, { volumes });
        case 'GET /v2/volumes/:id': {
          const v = volumes.find((x) => x.id === id);
          return v ? send(res, 200, { volume: v }) : error(res, 404, 'OpenVBS.0404', `Volume ${id} could not be found.`);
        }
        case 'DELETE /v2/volumes/:id': {
          const i = volumes.findIndex((x) => x.id === id);
          if (i < 0) return error(res, 404, 'OpenVBS.0404', `Volume ${id} could not be found.`);
          if (volumes[i]!.status !== 'available') return error(res, 409, 'VolumeBackup.0012', `volume ${id} is ${volumes[i]!.status}`);
          volumes.splice(i, 1);
          return send(res, 204);
        }
        case 'POST /v1/keys': {
          const k = b.key ?? {};
          if (k.alias !== undefined && (typeof k.alias !== 'string' || !/^alias\/[A-Za-z0-9/_-]{1,250}$/.test(k.alias))) {
            return error(res, 400, 'OpenVBS.1201', `invalid alias ${String(k.alias)}`);
          }
          if (keys.some((x) => x.alias === k.alias)) return error(res, 409, 'OpenVBS.1202', `alias ${String(k.alias)} is already in use`);
          const keyId = `key-${keys.length + 1}`;
          const key: Key = {
            id: keyId,
            arn: `arn:openvbs:kms:local:${PROJECT}:key/${keyId}`,
            alias: typeof k.alias === 'string' ? k.alias : null,
            description: typeof k.description === 'string' ? k.description : null,
            enabled: true,
            created_at: '2025-01-01T12:00:00.000Z',
          };
          keys.push(key);
          return send(res, 201, { key });
        }
        case 'GET /v1/keys':
          return send(res, 200, { keys });
        case 'POST /v2/cloudbackups': {
          const bk = b.backup ?? {};
          if (typeof bk.name === 'string' && bk.name.startsWith('auto')) {
            return error(res, 400, 'VolumeBackup.0005', 'backup name must not start with "auto"');
          }
          const vol = volumes.find((x) => x.id === bk.volume_id);
          if (!vol) return error(res, 404, 'OpenVBS.0404', `volume ${String(bk.volume_id)} not found`);
          const jobId = newJobId();
          const entities = { backup_id: `bk-${jobId}`, volume_id: vol.id };
          addJob(vol.id === 'vol-broken' ? failScript(jobId, 'bksCreateBackup', entities) : successScript(jobId, 'bksCreateBackup', entities));
          return send(res, 200, { job_id: jobId });
        }
        case 'GET /v2/backups/detail': {
          let list = backups;
          const q = url.searchParams;
          if (q.get('status')) list = list.filter((x) => x.status === q.get('status'));
          if (q.get('name')) list = list.filter((x) => x.name === q.get('name'));
          if (q.get('volume_id')) list = list.filter((x) => x.volume_id === q.get('volume_id'));
          const limit = q.get('limit') ? Number(q.get('limit')) : undefined;
          const page = limit !== undefined ? list.slice(0, limit) : list;
          const out: Record<string, unknown> = { backups: page };
          if (limit !== undefined && list.length > limit) {
            out.backups_links = [{ rel: 'next', href: `http://fake/v2/${PROJECT}/backups/detail?limit=${limit}&marker=${page.at(-1)!.id}` }];
          }
          return send(res, 200, out);
        }
        case 'GET /v2/backups/:id': {
          const bk = backups.find((x) => x.id === id);
          return bk ? send(res, 200, { backup: bk }) : send(res, 404, { itemNotFound: { message: `Backup ${id} could not be found.`, code: 404 } });
        }
        case 'POST /v2/cloudbackups/:id': {
          if (!backups.some((x) => x.id === id)) return error(res, 404, 'OpenVBS.0404', `Backup ${id} could not be found.`);
          const jobId = newJobId();
          addJob(successScript(jobId, 'bksDeleteBackup', { backup_id: id! }));
          return send(res, 200, { job_id: jobId });
        }
        case 'POST /v2/cloudbackups/:id/restore': {
          const target = b.restore?.volume_id;
          if (!volumes.some((x) => x.id === target)) return error(res, 404, 'OpenVBS.0404', `volume ${String(target)} not found`);
          const jobId = newJobId();
          addJob(successScript(jobId, 'bksRestoreBackup', { backup_id: id!, volume_id: String(target) }));
          return send(res, 200, { job_id: jobId });
        }
        case 'POST /v1/jobs/:id/cancel': {
          const job = jobs.get(id!);
          if (!job) return error(res, 404, 'common.0011', `job ${id} not found`);
          const state = job.script[Math.min(job.polls, job.script.length - 1)] as { status: string };
          if (state.status === 'SUCCESS' || state.status === 'FAIL') return error(res, 409, 'OpenVBS.1005', `job ${id} has ended`);
          const cancelled = { ...state, status: 'FAIL', fail_reason: 'cancelled' };
          job.script = [cancelled];
          job.polls = 0;
          return send(res, 200, cancelled);
        }
        case 'GET /v1/jobs/:id': {
          const job = jobs.get(id!);
          if (!job) return error(res, 404, 'common.0011', `job ${id} not found`);
          const state = job.script[Math.min(job.polls, job.script.length - 1)];
          job.polls++;
          return send(res, 200, state);
        }
        default:
          return error(res, 404, 'OpenVBS.0404', `no route ${route}`);
      }
    })().catch((err: unknown) => error(res, 500, 'OpenVBS.0500', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    jobs,
    volumes,
    keys,
    addJob,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

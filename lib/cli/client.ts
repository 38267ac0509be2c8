// A small HTTP client of the OpenVBS API (VBS v2, job v1 and the OpenVBS extensions; see
// docs/service-contract.md). One method per endpoint; each returns the response JSON as the server sent
// it, so `--json` can print it unchanged. Failures are ApiError (the server answered with an error) or
// NetworkError (no answer).

export type JobStatus = 'INIT' | 'RUNNING' | 'SUCCESS' | 'FAIL';

export interface Job {
  job_id: string;
  job_type?: string;
  status: JobStatus;
  begin_time?: string | null;
  end_time?: string | null;
  error_code?: string | null;
  fail_reason?: string | null;
  entities?: Record<string, string>;
  sub_jobs?: unknown[];
  progress?: number;
  bytes_done?: number;
  bytes_total?: number;
  [key: string]: unknown;
}

export interface Volume {
  id: string;
  name: string;
  status: string;
  size: number;
  size_bytes: number;
  path: string;
  encrypted: boolean;
  kms_key_id?: string | null;
  created_at: string;
  updated_at: string;
  [key: string]: unknown;
}

export interface Backup {
  id: string;
  name: string;
  status: string;
  description?: string | null;
  volume_id: string;
  size?: number;
  fail_reason?: string | null;
  created_at?: string;
  updated_at?: string;
  is_incremental?: boolean;
  service_metadata?: string;
  [key: string]: unknown;
}

/** A customer key (`POST|GET /v1/{project_id}/keys`): a volume names one as its `kms_key_id`. */
export interface Key {
  id: string;
  arn: string;
  alias?: string | null;
  description?: string | null;
  enabled: boolean;
  created_at: string;
  [key: string]: unknown;
}

/** An API token as listed (`GET /v1/{project_id}/tokens`); the secret only in the answer to its creation. */
export interface TokenInfo {
  id: string;
  project_id: string;
  scope: 'admin' | 'user';
  description: string | null;
  created_at: string;
  expires_at: string | null;
  [key: string]: unknown;
}

export interface TokenCreateRequest {
  description?: string;
  /** The server's default is `user`. */
  scope?: 'admin' | 'user';
  /** Seconds. */
  expires_in?: number;
}

export interface KeyCreateRequest {
  alias?: string;
  description?: string;
}

export interface Link {
  rel: string;
  href: string;
}

export interface BackupListQuery {
  status?: string;
  volume_id?: string;
  name?: string;
  limit?: number;
  marker?: string;
}

export type VolumeCreateRequest = { name: string; kms_key_id?: string } & ({ size: number } | { size_bytes: number } | { path: string });

export interface BackupCreateRequest {
  volume_id: string;
  name: string;
  description?: string;
  extend_param?: { FullBackup: 'true' };
}

/** CSBS's fixed provider id (every server backup path names it). */
export const CSBS_PROVIDER_ID = 'fc4d5750-22e7-4798-8a46-f48f62c4c1da';

/** One disk of a server backup (`extend_info.volume_backups[]`). */
export interface VolumeBackupInfo {
  id: string;
  name: string;
  status: string;
  bootable: boolean;
  incremental: boolean;
  source_volume_id: string;
  source_volume_size: number;
  size: number;
  device?: string;
  [key: string]: unknown;
}

/** A server backup as CSBS lists and shows it (`/v1/{project_id}/checkpoint_items`). */
export interface CheckpointItem {
  id: string;
  checkpoint_id: string;
  name: string;
  resource_id: string;
  status: string;
  created_at: string;
  description?: string | null;
  extend_info: {
    progress?: number;
    incremental?: boolean;
    resource_name?: string;
    size?: number;
    fail_reason?: string;
    volume_backups?: VolumeBackupInfo[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface ServerBackupListQuery {
  resource_id?: string;
  checkpoint_id?: string;
  status?: string;
  limit?: number;
  marker?: string;
}

export interface ProtectRequest {
  backup_name?: string;
  description?: string;
  incremental?: boolean;
}

export interface ServerRestoreRequest {
  checkpoint_id: string;
  checkpoint_item_id?: string;
  server_id?: string;
  power_on?: boolean;
}

/** The server answered with an error status. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  /** The parsed body (or its text when not JSON). */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, body: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** No HTTP answer: refused, unresolvable host, reset, timed out. */
export class NetworkError extends Error {
  override name = 'NetworkError';
  readonly url: string;

  constructor(url: string, message: string) {
    super(message);
    this.url = url;
  }
}

export interface ClientOptions {
  url: string;
  project: string;
  token: string;
  /** Per request; default 30 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

/** Why fetch failed, in words, from the error's cause chain (`fetch failed` alone says nothing). */
export function describeFetchError(err: unknown): string {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  let innermost = err instanceof Error ? err.message : String(err);
  while (cur && typeof cur === 'object' && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as { name?: string; code?: string; message?: string; cause?: unknown; errors?: unknown[] };
    if (e.name === 'TimeoutError') return 'no answer in time';
    if (e.code && REASONS[e.code]) return `${REASONS[e.code]} (${e.code})`;
    if (e.message) innermost = e.code ? `${e.message} (${e.code})` : e.message;
    // AggregateError (IPv4 and IPv6 both refused): look at the first.
    cur = e.cause ?? e.errors?.[0];
  }
  return innermost;
}

/** The error code and message from any of the error bodies the API may send. */
export function parseErrorBody(status: number, statusText: string, body: unknown): { code: string; message: string } {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object';
    // {"error":{"code","message"}} (ours and VBS); else the OpenStack family {"itemNotFound":{"message","code":404}},
    // where the key names the error.
    const key = isObject(b.error) ? 'error' : Object.keys(b).find((k) => isObject(b[k]) && typeof (b[k] as Record<string, unknown>).message === 'string');
    const inner = key === undefined ? undefined : (b[key] as Record<string, unknown>);
    if (inner) {
      const code = typeof inner.code === 'string' && inner.code ? inner.code : key !== 'error' ? (key as string) : `HTTP ${status}`;
      return { code, message: typeof inner.message === 'string' ? inner.message : statusText || 'request failed' };
    }
    if (typeof b.message === 'string') return { code: typeof b.code === 'string' ? b.code : `HTTP ${status}`, message: b.message };
  }
  const text = typeof body === 'string' ? body.trim().replace(/\s+/g, ' ').slice(0, 200) : '';
  return { code: `HTTP ${status}`, message: text || statusText || 'request failed' };
}

export class OpenVbsClient {
  readonly baseUrl: string;
  readonly project: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.project = options.project;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchFn = options.fetch ?? fetch;
  }

  private v2(path: string) {
    return `/v2/${encodeURIComponent(this.project)}${path}`;
  }

  private v1(path: string) {
    return `/v1/${encodeURIComponent(this.project)}${path}`;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { 'X-Auth-Token': this.token, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await this.fetchFn(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw new NetworkError(this.baseUrl, `cannot reach the OpenVBS API at ${this.baseUrl}: ${describeFetchError(err)}`);
    }
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const { code, message } = parseErrorBody(res.status, res.statusText, parsed);
      throw new ApiError(res.status, code, message, parsed);
    }
    if (typeof parsed === 'string') {
      throw new ApiError(res.status, 'OpenVBS.BadResponse', `${method} ${path} answered ${res.status} with a body that is not JSON`, parsed);
    }
    return parsed as T;
  }

  createToken(token: TokenCreateRequest = {}) {
    return this.request<{ token: TokenInfo & { token: string } }>('POST', this.v1('/tokens'), { token });
  }

  listTokens() {
    return this.request<{ tokens: TokenInfo[] }>('GET', this.v1('/tokens'));
  }

  /** 204, no body. */
  async revokeToken(id: string): Promise<void> {
    await this.request<undefined>('DELETE', this.v1(`/tokens/${encodeURIComponent(id)}`));
  }

  createVolume(volume: VolumeCreateRequest) {
    return this.request<{ volume: Volume }>('POST', this.v2('/volumes'), { volume });
  }

  listVolumes() {
    return this.request<{ volumes: Volume[] }>('GET', this.v2('/volumes'));
  }

  showVolume(id: string) {
    return this.request<{ volume: Volume }>('GET', this.v2(`/volumes/${encodeURIComponent(id)}`));
  }

  /** 204, no body. */
  async deleteVolume(id: string): Promise<void> {
    await this.request<undefined>('DELETE', this.v2(`/volumes/${encodeURIComponent(id)}`));
  }

  createKey(key: KeyCreateRequest) {
    return this.request<{ key: Key }>('POST', this.v1('/keys'), { key });
  }

  listKeys() {
    return this.request<{ keys: Key[] }>('GET', this.v1('/keys'));
  }

  createBackup(backup: BackupCreateRequest) {
    return this.request<{ job_id: string }>('POST', this.v2('/cloudbackups'), { backup });
  }

  listBackups(query: BackupListQuery = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.size ? `?${params}` : '';
    return this.request<{ backups: Backup[]; backups_links?: Link[] }>('GET', this.v2(`/backups/detail${qs}`));
  }

  showBackup(id: string) {
    return this.request<{ backup: Backup }>('GET', this.v2(`/backups/${encodeURIComponent(id)}`));
  }

  deleteBackup(id: string) {
    return this.request<{ job_id: string }>('POST', this.v2(`/cloudbackups/${encodeURIComponent(id)}`));
  }

  restoreBackup(id: string, volumeId: string) {
    return this.request<{ job_id: string }>('POST', this.v2(`/cloudbackups/${encodeURIComponent(id)}/restore`), {
      restore: { volume_id: volumeId },
    });
  }

  getJob(id: string) {
    return this.request<Job>('GET', this.v1(`/jobs/${encodeURIComponent(id)}`));
  }

  cancelJob(id: string) {
    return this.request<Job>('POST', this.v1(`/jobs/${encodeURIComponent(id)}/cancel`));
  }

  /** Backs up a server (CSBS protect): the checkpoint, with its job in `extra_info.job_id`. */
  protectServer(serverId: string, protect: ProtectRequest) {
    return this.request<{ checkpoint: { id: string; status: string; extra_info: { job_id: string; checkpoint_item_id: string } } }>(
      'POST',
      this.v1(`/providers/${CSBS_PROVIDER_ID}/resources/${encodeURIComponent(serverId)}/action`),
      { protect: { ...protect, resource_type: 'OS::Nova::Server' } },
    );
  }

  listServerBackups(query: ServerBackupListQuery = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.size ? `?${params}` : '';
    return this.request<{ checkpoint_items: CheckpointItem[]; checkpoint_items_links?: Link[] }>('GET', this.v1(`/checkpoint_items${qs}`));
  }

  showServerBackup(itemId: string) {
    return this.request<{ checkpoint_item: CheckpointItem }>('GET', this.v1(`/checkpoint_items/${encodeURIComponent(itemId)}`));
  }

  /** 200 with the deletion's job. */
  deleteServerBackup(checkpointId: string) {
    return this.request<{ job_id: string }>('DELETE', this.v1(`/providers/${CSBS_PROVIDER_ID}/checkpoints/${encodeURIComponent(checkpointId)}`));
  }

  /** The restore; its `id` is the restore's job. */
  restoreServerBackup(req: ServerRestoreRequest) {
    const targets = req.server_id !== undefined ? { targets: { server_id: req.server_id } } : {};
    return this.request<{ restore: { id: string; status: string; [key: string]: unknown } }>('POST', this.v1('/restores'), {
      restore: {
        provider_id: CSBS_PROVIDER_ID,
        checkpoint_id: req.checkpoint_id,
        parameters: {
          ...(req.checkpoint_item_id !== undefined ? { checkpoint_item_id: req.checkpoint_item_id } : {}),
          ...(req.power_on !== undefined ? { power_on: req.power_on } : {}),
          ...targets,
        },
      },
    });
  }
}

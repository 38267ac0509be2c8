// The real HTTP API as a client calls it, for the end-to-end tests: JSON in and out, the token in
// X-Auth-Token (null sends none), a string body sent as it is (to test malformed JSON).
export interface ApiAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever shape each route answers
  body: any;
}

export async function apiCall(url: string, token: string | null, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (token !== null) headers['X-Auth-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Polls the job API until the job has ended (SUCCESS or FAIL) and answers the job; fails after `timeoutMs`. */
export async function waitForJob(api: (method: string, path: string) => Promise<ApiAnswer>, projectId: string, jobId: string, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api('GET', `/v1/${projectId}/jobs/${jobId}`);
    if (res.status !== 200) throw new Error(`job ${jobId}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.status === 'SUCCESS' || res.body.status === 'FAIL') return res.body;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${res.body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

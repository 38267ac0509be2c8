import { describe, expect, it } from 'vitest';
import { ApiError, describeFetchError, NetworkError, OpenVbsClient, parseErrorBody } from '../../lib/cli/client.ts';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

function recordingFetch(status = 200, body: unknown = { ok: true }) {
  const calls: Call[] = [];
  const fn = (async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: init?.headers as Record<string, string>,
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : init?.body,
    });
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
  }) as typeof fetch;
  return { calls, fn };
}

describe('OpenVbsClient', () => {
  it('sends each request to its path with the token and JSON bodies', async () => {
    const { calls, fn } = recordingFetch();
    const c = new OpenVbsClient({ url: 'https://api.example/prod/', project: 'p 1', token: 'tok', fetch: fn });
    await c.createToken({ description: 'ci' });
    await c.createVolume({ name: 'd', size: 2 });
    await c.listVolumes();
    await c.showVolume('v/1');
    await c.deleteVolume('v/1');
    await c.createKey({ alias: 'finance' });
    await c.listKeys();
    await c.createBackup({ volume_id: 'v1', name: 'b', extend_param: { FullBackup: 'true' } });
    await c.listBackups({ status: 'available', limit: 2, marker: undefined });
    await c.listBackups();
    await c.showBackup('b1');
    await c.deleteBackup('b1');
    await c.restoreBackup('b1', 'v2');
    await c.getJob('j1');
    await c.listTokens();
    await c.revokeToken('t/1');
    expect(calls.map((x) => `${x.method} ${x.url}`)).toEqual([
      'POST https://api.example/prod/v1/p%201/tokens',
      'POST https://api.example/prod/v2/p%201/volumes',
      'GET https://api.example/prod/v2/p%201/volumes',
      'GET https://api.example/prod/v2/p%201/volumes/v%2F1',
      'DELETE https://api.example/prod/v2/p%201/volumes/v%2F1',
      'POST https://api.example/prod/v1/p%201/keys',
      'GET https://api.example/prod/v1/p%201/keys',
      'POST https://api.example/prod/v2/p%201/cloudbackups',
      'GET https://api.example/prod/v2/p%201/backups/detail?status=available&limit=2',
      'GET https://api.example/prod/v2/p%201/backups/detail',
      'GET https://api.example/prod/v2/p%201/backups/b1',
      'POST https://api.example/prod/v2/p%201/cloudbackups/b1',
      'POST https://api.example/prod/v2/p%201/cloudbackups/b1/restore',
      'GET https://api.example/prod/v1/p%201/jobs/j1',
      'GET https://api.example/prod/v1/p%201/tokens',
      'DELETE https://api.example/prod/v1/p%201/tokens/t%2F1',
    ]);
    expect(calls.every((x) => x.headers['X-Auth-Token'] === 'tok')).toBe(true);
    expect(calls[0]!.body).toEqual({ token: { description: 'ci' } });
    expect(calls[0]!.headers['Content-Type']).toBe('application/json');
    expect(calls[1]!.body).toEqual({ volume: { name: 'd', size: 2 } });
    expect(calls[4]!.body).toBeUndefined();
    expect(calls[5]!.body).toEqual({ key: { alias: 'finance' } });
    expect(calls[7]!.body).toEqual({ backup: { volume_id: 'v1', name: 'b', extend_param: { FullBackup: 'true' } } });
    expect(calls[11]!.body).toBeUndefined();
    expect(calls[12]!.body).toEqual({ restore: { volume_id: 'v2' } });
    expect(calls[15]!.body).toBeUndefined();
  });

  it('turns error answers into ApiError with the code and message', async () => {
    const { fn } = recordingFetch(400, { error: { code: 'VolumeBackup.0005', message: 'bad name' } });
    const c = new OpenVbsClient({ url: 'http://h', project: 'p', token: 't', fetch: fn });
    const err = await c.createBackup({ volume_id: 'v', name: 'autox' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: 'VolumeBackup.0005', message: 'bad name' });
  });

  it('turns fetch failures into NetworkError naming the URL and the reason', async () => {
    const fn = (async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    }) as typeof fetch;
    const c = new OpenVbsClient({ url: 'http://127.0.0.1:9/', project: 'p', token: 't', fetch: fn });
    const err = await c.listVolumes().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toBe('cannot reach the OpenVBS API at http://127.0.0.1:9: connection refused (ECONNREFUSED)');
  });

  it('takes a 204 without a body', async () => {
    const fn = (async () => new Response(null, { status: 204 })) as typeof fetch;
    const c = new OpenVbsClient({ url: 'http://h', project: 'p', token: 't', fetch: fn });
    await expect(c.deleteVolume('v1')).resolves.toBeUndefined();
  });

  it('rejects a success answer that is not JSON', async () => {
    const { fn } = recordingFetch(200, '<html>proxy</html>');
    const c = new OpenVbsClient({ url: 'http://h', project: 'p', token: 't', fetch: fn });
    await expect(c.listVolumes()).rejects.toThrow(/not JSON/);
  });
});

describe('parseErrorBody', () => {
  it('reads the VBS error shape', () => {
    expect(parseErrorBody(400, 'Bad Request', { error: { code: 'VolumeBackup.0012', message: 'busy' } })).toEqual({ code: 'VolumeBackup.0012', message: 'busy' });
  });

  it('reads the OpenStack shapes, naming the error by its key when the code is a number', () => {
    expect(parseErrorBody(404, 'Not Found', { itemNotFound: { message: 'Backup b could not be found.', code: 404 } })).toEqual({
      code: 'itemNotFound',
      message: 'Backup b could not be found.',
    });
    expect(parseErrorBody(400, 'Bad Request', { badRequest: { message: 'x', code: 400 } })).toEqual({ code: 'badRequest', message: 'x' });
  });

  it('falls back to the HTTP status and the text', () => {
    expect(parseErrorBody(502, 'Bad Gateway', '<html>\n  upstream down </html>')).toEqual({ code: 'HTTP 502', message: '<html> upstream down </html>' });
    expect(parseErrorBody(500, 'Internal Server Error', undefined)).toEqual({ code: 'HTTP 500', message: 'Internal Server Error' });
    expect(parseErrorBody(403, 'Forbidden', { message: 'Forbidden' })).toEqual({ code: 'HTTP 403', message: 'Forbidden' });
  });
});

describe('describeFetchError', () => {
  it('finds the reason in the cause chain', () => {
    const refused = new TypeError('fetch failed', { cause: new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]) });
    expect(describeFetchError(refused)).toBe('connection refused (ECONNREFUSED)');
    expect(describeFetchError(new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND h'), { code: 'ENOTFOUND' }) }))).toBe(
      'host not found (ENOTFOUND)',
    );
    expect(describeFetchError(new TypeError('fetch failed', { cause: new Error('bad port') }))).toBe('bad port');
    expect(describeFetchError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe('no answer in time');
  });
});

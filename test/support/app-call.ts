// The Hono app called in-process as a client would call the API, for the API tests: JSON in and out, the token in
// X-Auth-Token. The app and the default token are read at call time (tests build them in beforeAll).
import type { ApiApp } from '../../lib/api/app.ts';
import type { ApiAnswer } from './api-call.ts';

export function appCaller(app: () => ApiApp, defaultToken: () => string) {
  return async (method: string, path: string, body?: unknown, as: string = defaultToken()): Promise<ApiAnswer> => {
    const res = await app().request(path, {
      method,
      headers: { 'X-Auth-Token': as, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

// `openvbs server …` in-process against the real API (the Hono app on a Node HTTP server over real stores:
// SQLite in memory, volume images in a temporary folder): what each command sends, prints and exits with.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../lib/api/app.ts';
import { argvArg } from '../../lib/cli/commands/servers.ts';
import type { CliIO } from '../../lib/cli/context.ts';
import { run } from '../../lib/cli/main.ts';
import { ServerInventory } from '../../lib/volumes/servers.ts';
import { createServiceEnv, projectId } from '../service/service-env.ts';
import type { ServiceEnv } from '../service/service-env.ts';

let env: ServiceEnv;
let http: ServerType;
let url: string;
let home: string;
const project = projectId();
let token: string;

beforeAll(async () => {
  env = await createServiceEnv();
  const services = { ...env.services, servers: new ServerInventory({ servers: env.stores.servers, volumes: env.stores.volumes, allowHooks: true }) };
  http = serve({ fetch: createApiApp(services, { logger: { error: () => {} } }).fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => http.once('listening', () => resolve()));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  token = (await env.services.tokens.create(project, { scope: 'admin' })).token;
  home = mkdtempSync(join(tmpdir(), 'openvbs-cli-servers-'));
});

afterAll(async () => {
  await new Promise((resolve) => http?.close(resolve));
  await env?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: false, columns: 200 },
    env: { OPENVBS_HOME: home, OPENVBS_URL: url, OPENVBS_PROJECT: project, OPENVBS_TOKEN: token },
  };
  const code = await run(argv, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

const volume = async (name: string) => (await env.services.volumes.create(project, { name, sizeBytes: 1024 * 1024 })).volumeId;

describe('openvbs server', () => {
  it('creates a server with disks, lists and shows it', async () => {
    const [a, b] = [await volume('root'), await volume('data')];
    const created = await cli(['server', 'create', '--name', 'web', '--disk', a, '--disk', `${b}:/dev/vdd`, '--json']);
    expect(created.code).toBe(0);
    const server = JSON.parse(created.stdout).server;
    expect(server.disks).toEqual([
      { volume_id: a, device: '/dev/vda', bootable: true },
      { volume_id: b, device: '/dev/vdd', bootable: false },
    ]);
    const list = await cli(['server', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID +NAME +STATUS +DISKS +HOOKS\n/);
    expect(list.stdout).toContain(`${server.id}  web   running  /dev/vda=${a} /dev/vdd=${b}  no`);
    const show = await cli(['server', 'show', server.id]);
    expect(show.stdout).toMatch(new RegExp(`^id: +${server.id}$`, 'm'));
    expect(show.stdout).toMatch(/^status: +running$/m);
    expect(show.stdout).toMatch(/^freeze_hook: +-$/m);
    expect(show.stdout).toMatch(new RegExp(`^/dev/vdd +${b} +false$`, 'm'));
  });

  it('stops and starts, attaches and detaches, sets and clears hooks, deletes', async () => {
    const s = JSON.parse((await cli(['server', 'create', '--name', 'db', '--stopped', '--json'])).stdout).server;
    expect(s.status).toBe('stopped');
    expect((await cli(['server', 'start', s.id])).stdout).toMatch(/^status: +running$/m);
    expect((await cli(['server', 'stop', s.id])).stdout).toMatch(/^status: +stopped$/m);

    const v = await volume('logs');
    const attached = await cli(['server', 'attach', s.id, v, '--device', '/dev/sdb', '--bootable']);
    expect(attached.code).toBe(0);
    expect(attached.stdout).toMatch(new RegExp(`^/dev/sdb +${v} +true$`, 'm'));
    const again = await cli(['server', 'attach', s.id, v]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`error: OpenVBS.1402: volume ${v} is already attached to server ${s.id}\n`);

    const hooks = await cli(['server', 'hooks', s.id, '--freeze', '["/usr/sbin/fsfreeze","--freeze","/srv"]', '--thaw', '["/usr/sbin/fsfreeze","--unfreeze","/srv"]', '--timeout', '20']);
    expect(hooks.code).toBe(0);
    expect(hooks.stdout).toMatch(/^freeze_hook: +\["\/usr\/sbin\/fsfreeze","--freeze","\/srv"\]$/m);
    expect(hooks.stdout).toMatch(/^hook_timeout_seconds: +20$/m);
    expect((await cli(['server', 'hooks', s.id, '--clear'])).stdout).toBe(`hooks of server ${s.id} removed\n`);
    expect((await cli(['server', 'show', s.id, '--json'])).stdout).toContain('"hooks": null');

    expect((await cli(['server', 'detach', s.id, v])).stdout).toBe(`volume ${v} detached from server ${s.id}\n`);
    expect((await env.services.volumes.get(project, v)).status).toBe('available');
    expect((await cli(['server', 'delete', s.id])).stdout).toBe(`server ${s.id} deleted\n`);
    const gone = await cli(['server', 'show', s.id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`error: OpenVBS.0404: server ${s.id} not found\n`);
  });

  it('refuses malformed options as usage errors', async () => {
    expect(() => argvArg('fsfreeze --freeze /srv')).toThrow(/JSON array of strings/);
    expect(() => argvArg('[]')).toThrow(/JSON array/);
    expect(argvArg('["/bin/true"]')).toEqual(['/bin/true']);
    let r = await cli(['server', 'hooks', 'some-id', '--freeze', 'fsfreeze -f /srv', '--thaw', '["/bin/true"]']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: option '--freeze <json>' argument 'fsfreeze -f \/srv' is invalid\. must be a JSON array of strings/);
    r = await cli(['server', 'hooks', 'some-id', '--freeze', '["/bin/true"]']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/give both --freeze and --thaw/);
    r = await cli(['server', 'create', '--name', 'x', '--disk', 'a:b:c']);
    expect(r.code).toBe(2);
  });
});

// `openvbs check` in-process against a real embedded home: the report in text and JSON, and the exit status
// (0 clean, 3 damage, 2 usage or no home).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_DAMAGE } from '../../lib/cli/commands/check.ts';
import type { CliIO } from '../../lib/cli/context.ts';
import { run } from '../../lib/cli/main.ts';
import { runBackup } from '../../lib/engine/backup.ts';
import type { CheckReport } from '../../lib/engine/check.ts';
import { readPackHeader } from '../../lib/engine/pack.ts';
import type { BackupRecord } from '../../lib/engine/ports.ts';
import { writeDiskImage } from '../support/disk-image.ts';
import { createEngineEnv } from '../support/engine-env.ts';
import type { EngineEnv } from '../support/engine-env.ts';

let env: EngineEnv;
let home: string;
let backup: BackupRecord;
let empty: string;

async function cli(argv: string[], vars: Record<string, string | undefined> = {}, tty = false) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: tty, columns: 200 },
    env: { OPENVBS_HOME: home, OPENVBS_CHUNK_WORKERS: '1', ...vars },
  };
  const code = await run(argv, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

beforeAll(async () => {
  env = await createEngineEnv('embedded', { engine: { segmentBlocks: 8, packTargetBytes: 1024 * 1024 } });
  if (env.config.backend !== 'embedded') throw new Error('embedded expected');
  home = env.config.home;
  empty = mkdtempSync(join(tmpdir(), 'openvbs-check-empty-'));
  const image = env.path('vol.img');
  await writeDiskImage(image, 6 * 1024 * 1024, 11, { zero: 0.2, text: 0.5, random: 0.3, copy: 0 });
  env.addVolume('proj-a', 'vol', { path: image });
  backup = await runBackup(env.deps, { projectId: 'proj-a', volumeId: 'vol', name: 'b' });
});

afterAll(async () => {
  await env?.close();
  rmSync(empty, { recursive: true, force: true });
});

describe('openvbs check', () => {
  it('refuses conflicting or bad options, and a home without a catalog, as usage errors', async () => {
    expect((await cli(['check', '--read-data', '--read-data-subset', '10%'])).code).toBe(2);
    for (const bad of ['0', '150%', 'ten', '-5']) {
      const r = await cli(['check', '--read-data-subset', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/percentage/);
    }
    const r = await cli(['check'], { OPENVBS_HOME: empty });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no OpenVBS home at ${empty}`);
  });

  it('exits 0 on a clean repository, in text and in JSON', async () => {
    const r = await cli(['check', '--read-data']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^checked 1 backup\(s\) in 1 project\(s\): 2 manifests/);
    expect(r.stdout).toMatch(/^read \d+ pack\(s\): \d+ chunks, .* at .* MB\/s$/m);
    expect(r.stdout).toContain('no damage found');

    const j = await cli(['check', '--project', 'proj-a', '--read-data-subset', '100%', '--json']);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout) as CheckReport;
    expect(report).toMatchObject({ ok: true, projects: 1, backups: 1, manifests: 2, readDataPercent: 100 });
    expect(report.bytesRead).toBeGreaterThan(0);

    // On a terminal: a progress line on stderr, cleared at the end; stdout the same.
    const onTty = await cli(['check', '--read-data'], {}, true);
    expect(onTty.code).toBe(0);
    expect(onTty.stderr.startsWith('\rchecking project proj-a: ')).toBe(true);
    expect(onTty.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(onTty.stdout.replace(/[\d.]+ MB\/s|took [\d.]+ s/g, '')).toBe(r.stdout.replace(/[\d.]+ MB\/s|took [\d.]+ s/g, ''));

    const other = await cli(['check', '--project', 'nobody', '--json']);
    expect(other.code).toBe(0);
    expect(JSON.parse(other.stdout)).toMatchObject({ ok: true, backups: 0 });
  });

  it(`exits ${EXIT_DAMAGE} and names backup, blocks and pack when a pack has a flipped byte`, async () => {
    let pack = { key: '', size: 0 };
    for await (const obj of env.deps.store.list(`packs/${backup.domainId}/`)) pack = obj;
    const keys = (await env.deps.domains.forBackup('proj-a', backup.kmsKeyId, backup.domainId)).keys;
    const [entry] = await readPackHeader(env.deps.store, keys, pack.key, pack.size);
    const body = await env.backend.objects.get(pack.key);
    body[entry!.offset + 40] = body[entry!.offset + 40]! ^ 0x10;
    await env.backend.objects.put(pack.key, body);

    expect((await cli(['check'])).code).toBe(0); // metadata alone does not see it
    const r = await cli(['check', '--read-data']);
    expect(r.code).toBe(EXIT_DAMAGE);
    expect(r.stdout).toContain('DAMAGE: 1 problem(s) in 1 backup(s):');
    expect(r.stdout).toMatch(new RegExp(`chunk-data: backup ${backup.backupId} \\(volume vol, project proj-a\\) segment \\d blocks [\\d,-]+ pack ${pack.key} chunk ${entry!.id.toString('hex')}: chunk does not verify`));
    expect(r.stderr).toBe('error: damage found in 1 backup(s)\n');

    const j = await cli(['check', '--read-data', '--json']);
    expect(j.code).toBe(EXIT_DAMAGE);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, damagedBackups: 1, damage: [{ kind: 'chunk-data', backupId: backup.backupId, pack: pack.key }] });
    expect(JSON.parse(j.stderr)).toEqual({ error: { code: 'damage_found', message: 'damage found in 1 backup(s)' } });
  });
});

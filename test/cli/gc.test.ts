// `openvbs gc` in-process against a real embedded home: what a deleted backup held goes over three runs (mark,
// delete entries and note packs, delete packs), the report in text and JSON, and a `gc` notification.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../lib/cli/context.ts';
import { run } from '../../lib/cli/main.ts';
import { runBackup } from '../../lib/engine/backup.ts';
import type { GcReport } from '../../lib/engine/gc.ts';
import { embeddedPaths } from '../../lib/wiring/backend.ts';
import { writeDiskImage } from '../support/disk-image.ts';
import { createEngineEnv } from '../support/engine-env.ts';
import type { EngineEnv } from '../support/engine-env.ts';

let env: EngineEnv;
let home: string;

async function cli(argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s), isTTY: false, columns: 200 },
    env: { OPENVBS_HOME: home },
  };
  const code = await run(argv, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

async function storedBytes(): Promise<number> {
  let n = 0;
  for await (const o of env.backend.objects.list('')) n += o.size;
  return n;
}

beforeAll(async () => {
  env = await createEngineEnv('embedded', { engine: { segmentBlocks: 8, packTargetBytes: 1024 * 1024 } });
  if (env.config.backend !== 'embedded') throw new Error('embedded expected');
  home = env.config.home;
  const image = env.path('vol.img');
  await writeDiskImage(image, 6 * 1024 * 1024, 11, { zero: 0.2, text: 0, random: 0.8, copy: 0 });
  env.addVolume('proj-a', 'vol', { path: image });
  const backup = await runBackup(env.deps, { projectId: 'proj-a', volumeId: 'vol', name: 'b' });
  const deleting = await env.stores.backups.updateBackup('proj-a', backup.backupId, { status: 'deleting' }, ['available']);
  await env.stores.gcQueue.removeBackupAndQueue(deleting);
});

afterAll(async () => {
  await env?.close();
});

describe('openvbs gc', () => {
  it('frees a deleted backup over three runs, reports each, and notifies', async () => {
    const before = await storedBytes();
    expect(before).toBeGreaterThan(0);
    const reports: GcReport[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 10)); // past the margin below
      const out = await cli(['--json', 'gc', '--margin-hours', '0.000001']);
      expect(out.code).toBe(0);
      reports.push(JSON.parse(out.stdout) as GcReport);
    }
    expect(reports.map((r) => r.ran)).toEqual([true, true, true]);
    expect(reports[0]!.manifestsDeleted).toBeGreaterThan(0);
    expect(reports[0]!.entriesMarked).toBeGreaterThan(0);
    expect(reports[1]!.indexEntriesDeleted).toBe(reports[0]!.entriesMarked);
    expect(reports[2]!.packsDeleted).toBeGreaterThan(0);
    expect(await storedBytes()).toBe(0);
    expect(reports.reduce((n, r) => n + r.bytesFreed, 0)).toBe(before);

    const text = await cli(['gc']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^scanned 1 key domain\(s\): 0 backup\(s\) as roots/);
    const lines = (await readFile(embeddedPaths(home).notifications, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const gc = lines.filter((l) => JSON.stringify(l).includes('"gc"'));
    expect(gc.length).toBe(4);
  });

  it('refuses a margin that is not a positive number of hours', async () => {
    expect((await cli(['gc', '--margin-hours', '-1'])).code).toBe(2);
  });
});

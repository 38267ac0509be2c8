// One phase of OpenVBS in the race (npm run bench:race), as its own process so that /usr/bin/time measures
// it the way it measures restic. The engine runs through the composition root (openRuntime) with the
// default chunk workers (one per core); the volumes are image files named on the command line.
//
//   node bench/race/openvbs-phase.ts <config-json> init
//   node bench/race/openvbs-phase.ts <config-json> backup <image> <name>
//   node bench/race/openvbs-phase.ts <config-json> restore <backup-id> <target-image>
//
// <config-json> is a ServiceConfig: {"backend":"embedded","home":...} or the AWS one (bucket, tables, key),
// with AWS_ENDPOINT_URL and credentials in the environment. Prints one JSON line: the backup's id, parent
// and stats, or what the restore wrote.
import { runBackup } from '../../lib/engine/backup.ts';
import { restoreBackup } from '../../lib/engine/restore.ts';
import type { ServiceConfig } from '../../lib/config.ts';
import { FileVolumeProvider } from '../../lib/volumes/file-provider.ts';
import { openRuntime } from '../../lib/wiring/runtime.ts';

const RACE_PROJECT = 'race';
const SOURCE = 'src';
const TARGET = 'dst';

const [configJson, command, ...args] = process.argv.slice(2);
const usage = 'usage: openvbs-phase.ts <config-json> init | backup <image> <name> | restore <backup-id> <target-image>';
if (!configJson || !command) throw new Error(usage);
const config = JSON.parse(configJson) as ServiceConfig;

const paths = new Map<string, string>();
if (command === 'backup') paths.set(SOURCE, args[0]!);
if (command === 'restore') paths.set(TARGET, args[1]!);
const volumes = new FileVolumeProvider(async (_projectId, volumeId) => {
  const path = paths.get(volumeId);
  return path === undefined ? undefined : { path };
});

const runtime = await openRuntime(config, { volumes });
try {
  if (command === 'init') {
    // Opening the backend is the setup (the embedded home and its service key); nothing else to do.
    console.log(JSON.stringify({ ok: true }));
  } else if (command === 'backup' && args.length === 2) {
    const rec = await runBackup(runtime.taskDeps().engine, { projectId: RACE_PROJECT, volumeId: SOURCE, name: args[1]! });
    console.log(JSON.stringify({ backupId: rec.backupId, parentId: rec.parentId ?? null, stats: rec.stats }));
  } else if (command === 'restore' && args.length === 2) {
    const res = await restoreBackup(runtime.taskDeps().engine, { projectId: RACE_PROJECT, backupId: args[0]!, targetVolumeId: TARGET });
    console.log(JSON.stringify({ backupId: res.backupId, bytesWritten: res.bytesWritten, blocks: res.blocks }));
  } else {
    throw new Error(usage);
  }
} finally {
  await runtime.close();
}

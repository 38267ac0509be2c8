// `npm start`: runs OpenVBS locally and prints how to reach it. SIGINT/SIGTERM stop it gracefully (running
// jobs get a bounded wait, then are resumed by the next start); a second signal exits at once.
import { HomeLockedError, defaultHome, lockHome } from './home.ts';
import type { HomeLock } from './home.ts';

const STOP_GRACE_MS = Number(process.env.OPENVBS_STOP_GRACE_MS ?? 10_000);
const home = defaultHome();

// The home is taken before anything else is loaded or touched: a second instance is refused at once.
let lock: HomeLock;
try {
  lock = await lockHome(home);
} catch (err) {
  if (!(err instanceof HomeLockedError)) throw err;
  console.error(`openvbs: ${err.message}`);
  process.exit(1);
}

const { PortInUseError, startLocalService } = await import('./service.ts');
let service: Awaited<ReturnType<typeof startLocalService>>;
try {
  service = await startLocalService({ home, lock, port: process.env.PORT ? Number(process.env.PORT) : 8080 });
} catch (err) {
  if (err instanceof PortInUseError) {
    console.error(`openvbs: ${err.message}`);
    process.exit(1);
  }
  throw err;
}

console.log(`OPENVBS_URL=${service.url}`);
console.log(`OPENVBS_PROJECT=${service.projectId}`);
console.log(`OPENVBS_TOKEN=${service.token}`);
const { resumed, failed } = service.recovered;
if (resumed.length || failed.length) console.log(`# after the last stop: ${resumed.length} job(s) resumed, ${failed.length} ended FAIL`);
console.log(`# ${service.backend} backend, state in ${service.home} (kept across restarts); the CLI finds this service there. Ctrl-C to stop.`);

let stopping = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
  stopping = true;
  console.log(`# ${signal}: stopping (running jobs get ${Math.round(STOP_GRACE_MS / 1000)} s; a second signal exits at once)`);
  void service.stop({ graceMs: STOP_GRACE_MS }).then(
    ({ finished }) => {
      if (!finished) console.log('# jobs still running were cut short; the next start resumes them');
      process.exit(0);
    },
    (err: unknown) => {
      console.error(`openvbs: stop failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

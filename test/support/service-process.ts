// `npm start` as a user runs it: the local runtime bundled (scripts/start.mjs builds it when its sources
// changed) and run in a child process (in its own process group, so a test can signal it and everything it
// started), on a given home folder and a free port.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

const START = resolve(import.meta.dirname, '../../scripts/start.mjs');

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  projectId: string;
  token: string;
  /** Sends `signal` to the service's process group. */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  output(): { stdout: string; stderr: string };
}

export interface StartedOrFailed {
  service?: ServiceProcess;
  exitCode?: number | string;
  stdout: string;
  stderr: string;
}

/** Starts the service; resolves once it printed its connection lines, or with its exit when it did not start. */
export function startServiceProcess(home: string, env: Record<string, string> = {}): Promise<StartedOrFailed> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', START], {
    env: { ...process.env, OPENVBS_HOME: home, PORT: '0', OPENVBS_BACKEND: 'embedded', OPENVBS_CHUNK_WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((ok) => child.once('exit', (code, signal) => ok(code ?? signal ?? 'unknown')));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  return new Promise((ok) => {
    const timer = setTimeout(() => {
      signal('SIGKILL');
      ok({ exitCode: 'start timed out', stdout, stderr });
    }, 60_000);
    const check = () => {
      const value = (name: string) => new RegExp(`^${name}=(.+)$`, 'm').exec(stdout)?.[1];
      const url = value('OPENVBS_URL');
      const projectId = value('OPENVBS_PROJECT');
      const token = value('OPENVBS_TOKEN');
      if (url && projectId && token) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        ok({ service: { child, url, projectId, token, signal, exited, output: () => ({ stdout, stderr }) }, stdout, stderr });
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      ok({ exitCode: code, stdout, stderr });
    });
  });
}

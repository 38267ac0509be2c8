// The `openvbs` program: the global options, one module per resource registering its commands
// (commands/), and `run`, which parses a command line with commander, runs the command and turns every
// failure into one line (or JSON with --json) and an exit status. `main` is the process around it.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Help } from 'commander';
import { registerBackupCommands } from './commands/backups.ts';
import { registerCheckCommands } from './commands/check.ts';
import { registerGcCommands } from './commands/gc.ts';
import { registerJobCommands } from './commands/jobs.ts';
import { registerKeyCommands } from './commands/keys.ts';
import { registerNotifyCommands } from './commands/notify.ts';
import { registerServerBackupCommands } from './commands/server-backups.ts';
import { registerServerCommands } from './commands/servers.ts';
import { registerTickCommands } from './commands/tick.ts';
import { registerTokenCommands } from './commands/tokens.ts';
import { registerVolumeCommands } from './commands/volumes.ts';
import { CliContext } from './context.ts';
import type { CliIO, GlobalOptions } from './context.ts';
import { EXIT_OK, UsageError } from './errors.ts';
import { nonEmpty } from './options.ts';

const RESOURCES = [registerTokenCommands, registerKeyCommands, registerVolumeCommands, registerServerCommands, registerBackupCommands, registerServerBackupCommands, registerJobCommands, registerCheckCommands, registerGcCommands, registerNotifyCommands, registerTickCommands];

const EPILOG = `
Connection: each of --url, --project and --token, else OPENVBS_URL, OPENVBS_PROJECT and OPENVBS_TOKEN,
else the connection file that \`npm start\` writes: $OPENVBS_HOME/connection.json (default .openvbs/ in
the repository). The file is only used for the service it names.

Exit status: 0 success; 1 API error, failed job, timeout or unreachable server; 2 usage error;
130 wait interrupted (the job goes on). With --json, errors are {"error":{"code","message"}} on stderr.`;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const defaultHelp = new Help();

/** In a command list, a group shows its subcommands: `volume create|list|show|delete`. */
function subcommandTerm(command: Command): string {
  if (!command.commands.length) return defaultHelp.subcommandTerm(command);
  return `${command.name()} ${command.commands.map((c) => c.name()).join('|')}`;
}

const commandPath = (command: Command): string => (command.parent ? `${commandPath(command.parent)} ${command.name()}` : command.name());

/**
 * Commander ends a parse that goes no further through the exit callback: help or version shown (exit
 * 0, passed on), a command group without its subcommand, or any other mistake: a usage error that
 * points at the help of the command where it happened.
 */
function routeExits(command: Command): void {
  const path = commandPath(command);
  command.exitOverride((err) => {
    if (err.exitCode === 0) throw err;
    if (err.code === 'commander.help') {
      const names = command.commands.map((c) => c.name()).join(', ');
      throw new UsageError(command.parent ? `"${path}" needs a subcommand: ${names}` : `no command given; commands: ${names}`, path);
    }
    // Commander's messages start with "error: " and may add a suggestion on a second line.
    throw new UsageError(err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim(), path);
  });
  for (const sub of command.commands) routeExits(sub);
}

export function buildProgram(cli: CliContext, io: CliIO): Command {
  const program = new Command('openvbs')
    .description('drive an OpenVBS service: volumes, backups and restores, jobs, keys and tokens')
    .version(version(), '-V, --version', 'print the version')
    .option('--url <url>', 'API endpoint (else $OPENVBS_URL, else the connection file)', nonEmpty)
    .option('--project <id>', 'project id (else $OPENVBS_PROJECT, else the connection file)', nonEmpty)
    .option('--token <token>', 'API token, sent as X-Auth-Token (else $OPENVBS_TOKEN, else the connection file)', nonEmpty)
    .option('--json', 'print JSON on stdout (the API\'s own), and errors as JSON on stderr')
    .configureHelp({ showGlobalOptions: true, subcommandTerm })
    // Commander writes help to stdout; its error lines and error help are replaced by ours (see routeExits).
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: () => {}, outputError: () => {}, getOutHelpWidth: () => io.stdout.columns ?? 100 })
    .addHelpText('after', EPILOG);
  for (const register of RESOURCES) register(program, cli);
  routeExits(program);
  return program;
}

/** `--json` on the line, for failures that come before commander has read the global options. */
function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** Runs one `openvbs` command line; never throws. Returns the exit status. */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const cli = new CliContext(io, (): GlobalOptions => {
    const globals = program.opts<GlobalOptions>();
    return { ...globals, json: globals.json === true || jsonRequested(argv) };
  });
  const program = buildProgram(cli, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) return EXIT_OK;
    return cli.report(err);
  }
}

/** The `openvbs` process: real streams, environment and Ctrl-C around `run`. */
export async function main(): Promise<void> {
  const interrupt = new AbortController();
  let waiting = false;
  process.on('SIGINT', () => {
    // Ctrl-C during a wait stops waiting (the job goes on) and says how to resume; otherwise, or the
    // second time, it ends the process.
    if (!waiting || interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
  });
  // Whatever escapes `run` (it should not) ends as one line, never a stack trace.
  const fatal = (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);

  process.exitCode = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: interrupt.signal,
    onWaiting: (w) => {
      waiting = w;
    },
  });
}

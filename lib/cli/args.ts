// Command-line parsing for `openvbs`: argv -> a typed command, with no I/O. Every option has one
// meaning (and one kind: value or flag) across all commands, so one `util.parseArgs` pass reads the
// whole line; each command then says which options it accepts and which it needs.
import { parseArgs as nodeParseArgs } from 'node:util';

export interface GlobalOptions {
  url?: string;
  project?: string;
  token?: string;
  json: boolean;
}

export type Command =
  | { kind: 'help'; topic: string[] }
  | { kind: 'version' }
  | { kind: 'token-create'; description?: string }
  | { kind: 'volume-create'; name: string; size?: number; sizeBytes?: number; path?: string; kmsKeyId?: string }
  | { kind: 'volume-list' }
  | { kind: 'volume-show'; id: string }
  | { kind: 'backup-create'; volumeId: string; name: string; description?: string; full: boolean; wait?: WaitOptions }
  | { kind: 'backup-list'; status?: string; volumeId?: string; name?: string; limit?: number; marker?: string }
  | { kind: 'backup-show'; id: string }
  | { kind: 'backup-delete'; id: string; wait?: WaitOptions }
  | { kind: 'backup-restore'; id: string; volumeId: string; wait?: WaitOptions }
  | { kind: 'job-show'; id: string }
  | { kind: 'job-wait'; id: string; wait: WaitOptions };

export interface WaitOptions {
  /** Give up after this long (milliseconds); undefined waits until the job ends. */
  timeoutMs?: number;
}

export interface ParsedArgs {
  globals: GlobalOptions;
  command: Command;
}

/** A mistake on the command line: print the message and the usage of `topic` (none when null), exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly topic: string[] | null;

  constructor(message: string, topic: string[] | null = []) {
    super(message);
    this.topic = topic;
  }
}

const OPTIONS = {
  url: { type: 'string' },
  project: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  description: { type: 'string' },
  name: { type: 'string' },
  size: { type: 'string' },
  'size-bytes': { type: 'string' },
  path: { type: 'string' },
  'kms-key-id': { type: 'string' },
  volume: { type: 'string' },
  full: { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  marker: { type: 'string' },
} as const;

type OptionName = keyof typeof OPTIONS;
type OptionValues = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const GLOBAL_OPTIONS: readonly OptionName[] = ['url', 'project', 'token', 'json', 'help', 'version'];

interface CommandSpec {
  /** Usage line after `openvbs`. */
  usage: string;
  summary: string;
  /** Positional arguments after the two command words. */
  positionals: readonly string[];
  options: readonly OptionName[];
  /** One line per option, for the command's help. */
  optionHelp?: readonly string[];
}

export const COMMANDS: Readonly<Record<string, Readonly<Record<string, CommandSpec>>>> = {
  token: {
    create: {
      usage: 'token create [--description D]',
      summary: 'create another API token for the project (the secret is shown once)',
      positionals: [],
      options: ['description'],
    },
  },
  volume: {
    create: {
      usage: 'volume create --name N (--size GB | --size-bytes N | --path P) [--kms-key-id K]',
      summary: 'create a sparse volume image, or register an existing image or block device',
      positionals: [],
      options: ['name', 'size', 'size-bytes', 'path', 'kms-key-id'],
      optionHelp: [
        '--size GB          new image of this many GB (GiB)',
        '--size-bytes N     new image of exactly N bytes',
        '--path P           register an existing image file or block device',
        '--kms-key-id K     back the volume up under this KMS key',
      ],
    },
    list: { usage: 'volume list', summary: 'list the volumes', positionals: [], options: [] },
    show: { usage: 'volume show ID', summary: 'show one volume', positionals: ['ID'], options: [] },
  },
  backup: {
    create: {
      usage: 'backup create --volume ID --name N [--description D] [--full] [--wait [--timeout S]]',
      summary: 'back up a volume (incremental unless --full)',
      positionals: [],
      options: ['volume', 'name', 'description', 'full', 'wait', 'timeout'],
      optionHelp: [
        '--full             force a full backup',
        '--wait             follow the job until it ends (progress on stderr)',
        '--timeout S        with --wait: give up after S seconds (exit 1)',
      ],
    },
    list: {
      usage: 'backup list [--status S] [--volume ID] [--name N] [--limit N] [--marker M]',
      summary: 'list backups with details',
      positionals: [],
      options: ['status', 'volume', 'name', 'limit', 'marker'],
    },
    show: { usage: 'backup show ID', summary: 'show one backup', positionals: ['ID'], options: [] },
    delete: {
      usage: 'backup delete ID [--wait [--timeout S]]',
      summary: 'delete a backup (as a job)',
      positionals: ['ID'],
      options: ['wait', 'timeout'],
    },
    restore: {
      usage: 'backup restore ID --volume TARGET [--wait [--timeout S]]',
      summary: 'restore a backup onto a volume (overwrites the target)',
      positionals: ['ID'],
      options: ['volume', 'wait', 'timeout'],
    },
  },
  job: {
    show: { usage: 'job show ID', summary: 'show a job', positionals: ['ID'], options: [] },
    wait: {
      usage: 'job wait ID [--timeout S]',
      summary: 'follow a job until it ends (exit 0 on SUCCESS, 1 on FAIL or timeout)',
      positionals: ['ID'],
      options: ['timeout'],
    },
  },
};

const GLOBAL_HELP = [
  '--url URL          API endpoint (default $OPENVBS_URL)',
  '--project ID       project id (default $OPENVBS_PROJECT)',
  '--token T          API token, sent as X-Auth-Token (default $OPENVBS_TOKEN)',
  '--json             print the API JSON on stdout instead of text',
  '-h, --help         show help',
];

/** The help text for `topic` (`[]`, `[group]` or `[group, action]`); unknown topics give the overview. */
export function usage(topic: readonly string[] = []): string {
  const [group, action] = topic;
  const groupSpec = group !== undefined ? COMMANDS[group] : undefined;
  const spec = groupSpec && action !== undefined ? groupSpec[action] : undefined;
  if (spec) {
    const lines = [`usage: openvbs ${spec.usage} [global options]`, '', spec.summary];
    if (spec.optionHelp?.length) lines.push('', 'options:', ...spec.optionHelp.map((l) => `  ${l}`));
    lines.push('', 'global options:', ...GLOBAL_HELP.map((l) => `  ${l}`));
    return lines.join('\n') + '\n';
  }
  const groups = groupSpec ? { [group as string]: groupSpec } : COMMANDS;
  const lines = ['usage: openvbs <command> [options]', '', 'commands:'];
  for (const c of Object.values(groups).flatMap((g) => Object.values(g))) lines.push(`  ${c.usage}`, `      ${c.summary}`);
  lines.push('', 'global options:', ...GLOBAL_HELP.map((l) => `  ${l}`));
  if (!groupSpec) {
    lines.push(
      '',
      '`openvbs <command> --help` shows the options of a command.',
      'environment: OPENVBS_URL, OPENVBS_PROJECT, OPENVBS_TOKEN (as `npm start` prints them).',
      'exit status: 0 success, 1 API error, failed job, timeout or unreachable server, 2 usage error.',
    );
  }
  return lines.join('\n') + '\n';
}

function positiveInt(value: string, option: string, topic: string[]): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new UsageError(`--${option} must be a positive integer, got "${value}"`, topic);
  }
  return Number(value);
}

function positiveSeconds(value: string, option: string, topic: string[]): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${option} must be a positive number of seconds, got "${value}"`, topic);
  }
  return Math.round(n * 1000);
}

function nonEmpty(value: string, option: string, topic: string[]): string {
  if (value === '') throw new UsageError(`--${option} must not be empty`, topic);
  return value;
}

/** Parses `argv` (without node and script). Throws UsageError for anything malformed. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = nodeParseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true }) as {
      values: OptionValues;
      positionals: string[];
    };
  } catch (err) {
    // The message names the option ("Unknown option '--x'", "Option '--name <value>' argument missing").
    const message = err instanceof Error ? err.message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '') : String(err);
    throw new UsageError(message, commandWords(argv));
  }
  const { values, positionals } = parsed;
  const globals: GlobalOptions = { json: values.json ?? false };
  if (values.url !== undefined) globals.url = values.url;
  if (values.project !== undefined) globals.project = values.project;
  if (values.token !== undefined) globals.token = values.token;

  const [first, second, ...rest] = positionals;
  if (first === 'help') return { globals, command: { kind: 'help', topic: positionals.slice(1, 3) } };
  if (values.version && first === undefined) return { globals, command: { kind: 'version' } };
  if (first === undefined) {
    if (values.help) return { globals, command: { kind: 'help', topic: [] } };
    throw new UsageError('no command given');
  }
  const group = COMMANDS[first];
  if (!group) throw new UsageError(`unknown command "${first}"`);
  if (second === undefined) {
    if (values.help) return { globals, command: { kind: 'help', topic: [first] } };
    throw new UsageError(`"${first}" needs a subcommand: ${Object.keys(group).join(', ')}`, [first]);
  }
  const spec = group[second];
  if (!spec) throw new UsageError(`unknown command "${first} ${second}"`, [first]);
  const topic = [first, second];
  if (values.help) return { globals, command: { kind: 'help', topic } };

  for (const name of Object.keys(values) as OptionName[]) {
    if (values[name] === undefined || GLOBAL_OPTIONS.includes(name) || spec.options.includes(name)) continue;
    throw new UsageError(`"${first} ${second}" does not take --${name}`, topic);
  }
  if (rest.length > spec.positionals.length) {
    throw new UsageError(`unexpected argument "${rest[spec.positionals.length]}"`, topic);
  }
  if (rest.length < spec.positionals.length) {
    throw new UsageError(`missing ${spec.positionals[rest.length]}`, topic);
  }
  for (const [i, value] of rest.entries()) nonEmpty(value, spec.positionals[i]!, topic);
  const id = rest[0] as string;

  const required = (name: OptionName): string => {
    const v = values[name];
    if (typeof v !== 'string') throw new UsageError(`missing --${name}`, topic);
    return nonEmpty(v, name, topic);
  };
  const optional = (name: OptionName): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  const wait = (always = false): WaitOptions | undefined => {
    const timeout = optional('timeout');
    if (!always && !values.wait) {
      if (timeout !== undefined) throw new UsageError('--timeout needs --wait', topic);
      return undefined;
    }
    return timeout === undefined ? {} : { timeoutMs: positiveSeconds(timeout, 'timeout', topic) };
  };
  const withOptional = <T extends object>(base: T, extra: Record<string, unknown>): T => {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
    return out as T;
  };

  let command: Command;
  switch (`${first} ${second}`) {
    case 'token create':
      command = withOptional({ kind: 'token-create' }, { description: optional('description') });
      break;
    case 'volume create': {
      const name = required('name');
      const sources = (['size', 'size-bytes', 'path'] as const).filter((o) => values[o] !== undefined);
      if (sources.length !== 1) {
        throw new UsageError(sources.length ? `give only one of ${sources.map((o) => `--${o}`).join(', ')}` : 'missing --size, --size-bytes or --path', topic);
      }
      const size = optional('size');
      const sizeBytes = optional('size-bytes');
      const path = optional('path');
      command = withOptional(
        { kind: 'volume-create', name },
        {
          size: size === undefined ? undefined : positiveInt(size, 'size', topic),
          sizeBytes: sizeBytes === undefined ? undefined : positiveInt(sizeBytes, 'size-bytes', topic),
          path: path === undefined ? undefined : nonEmpty(path, 'path', topic),
          kmsKeyId: optional('kms-key-id'),
        },
      );
      break;
    }
    case 'volume list':
      command = { kind: 'volume-list' };
      break;
    case 'volume show':
      command = { kind: 'volume-show', id };
      break;
    case 'backup create':
      command = withOptional(
        { kind: 'backup-create', volumeId: required('volume'), name: required('name'), full: values.full ?? false },
        { description: optional('description'), wait: wait() },
      );
      break;
    case 'backup list': {
      const limit = optional('limit');
      command = withOptional(
        { kind: 'backup-list' },
        {
          status: optional('status'),
          volumeId: optional('volume'),
          name: optional('name'),
          limit: limit === undefined ? undefined : positiveInt(limit, 'limit', topic),
          marker: optional('marker'),
        },
      );
      break;
    }
    case 'backup show':
      command = { kind: 'backup-show', id };
      break;
    case 'backup delete':
      command = withOptional({ kind: 'backup-delete', id }, { wait: wait() });
      break;
    case 'backup restore':
      command = withOptional({ kind: 'backup-restore', id, volumeId: required('volume') }, { wait: wait() });
      break;
    case 'job show':
      command = { kind: 'job-show', id };
      break;
    case 'job wait':
      command = { kind: 'job-wait', id, wait: wait(true) as WaitOptions };
      break;
    default:
      throw new UsageError(`unknown command "${first} ${second}"`, [first]);
  }
  return { globals, command };
}

/** The command words in argv, best effort, for the usage shown with a parse error. */
function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) continue;
    if (words.length === 0 && COMMANDS[a]) words.push(a);
    else if (words.length === 1 && COMMANDS[words[0]!]?.[a]) {
      words.push(a);
      break;
    } else break;
  }
  return words;
}

export interface Connection {
  url: string;
  project: string;
  token: string;
}

/** Flags win over the environment. Throws UsageError naming what is missing. */
export function resolveConnection(globals: GlobalOptions, env: Readonly<Record<string, string | undefined>>): Connection {
  const url = globals.url ?? env.OPENVBS_URL;
  const project = globals.project ?? env.OPENVBS_PROJECT;
  const token = globals.token ?? env.OPENVBS_TOKEN;
  const missing: string[] = [];
  if (!url) missing.push('OPENVBS_URL (or --url)');
  if (!project) missing.push('OPENVBS_PROJECT (or --project)');
  if (!token) missing.push('OPENVBS_TOKEN (or --token)');
  if (missing.length) throw new UsageError(`not configured: set ${missing.join(', ')}; \`npm start\` prints them`, null);
  let parsed: URL;
  try {
    parsed = new URL(url as string);
  } catch {
    throw new UsageError(`invalid server URL "${url}"`, null);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`invalid server URL "${url}": not http(s)`, null);
  return { url: url as string, project: project as string, token: token as string };
}

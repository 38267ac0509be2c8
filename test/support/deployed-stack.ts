// The stack as `cdk synth` builds it for deployment: synthesized with real asset bundling (each NodejsFunction's
// esbuild bundle in the cloud assembly), read back from the assembly alone: each Lambda function's asset folder,
// handler file and export, memory, timeout and environment as the template gives them. Used by the deployed-bundle
// test (test/infra/deployed-bundles.test.ts) and the bundle benchmark (bench/bundles.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../../infra/synth.ts';
import type { CfnTemplate } from '../../infra/synth.ts';

/** Lambda gives a function one full vCPU's worth of CPU per 1,769 MB of memory. */
export const MB_PER_VCPU = 1769;

export interface DeployedFunction {
  logicalId: string;
  /** OPENVBS_HANDLER of its environment (the module `functions/<name>.ts` it was built from). */
  handlerName: string;
  /** The asset folder in the cloud assembly: what Lambda unpacks to /var/task. */
  assetDir: string;
  /** The file Lambda loads for the Handler (`index.handler` -> `<assetDir>/index.mjs`). */
  entryFile: string;
  exportName: string;
  memoryMb: number;
  timeoutSeconds: number;
  /** The environment as the template declares it (intrinsics unresolved). */
  environment: Record<string, unknown>;
}

export interface DeployedStack {
  outdir: string;
  template: CfnTemplate;
  /** By handler name. */
  functions: Map<string, DeployedFunction>;
  dispose(): void;
}

/** Lambda's resolution of `file.export`: the first of file.js, file.mjs, file.cjs in the task root. */
function handlerFile(assetDir: string, handler: string): { file: string; exportName: string } {
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new Error(`Handler "${handler}" is not <file>.<export>`);
  const base = handler.slice(0, dot);
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = path.join(assetDir, base + ext);
    if (fs.existsSync(file)) return { file, exportName: handler.slice(dot + 1) };
  }
  throw new Error(`no ${base}.js, .mjs or .cjs in the asset folder ${assetDir} for Handler "${handler}"`);
}

/**
 * Synthesizes OpenVbsStack into a fresh temporary cloud assembly with bundling on (esbuild, as `cdk synth`), and
 * finds every function's bundle through the assembly's asset manifest (the Code's S3 key names the asset).
 */
export function synthesizeDeployedStack(): DeployedStack {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'openvbs-deployed-'));
  const dispose = () => fs.rmSync(outdir, { recursive: true, force: true });
  try {
    const { app, stack } = buildApp({ bundling: true, outdir });
    const artifact = app.synth().getStackByName(stack.stackName);
    const template = artifact.template as CfnTemplate;
    const assetsFile = path.join(outdir, `${artifact.stackName}.assets.json`);
    const assets = (JSON.parse(fs.readFileSync(assetsFile, 'utf8')) as { files: Record<string, { source: { path: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }> }).files;
    const assetByKey = new Map<string, string>();
    for (const asset of Object.values(assets)) {
      for (const dest of Object.values(asset.destinations)) assetByKey.set(dest.objectKey, path.join(outdir, asset.source.path));
    }
    const functions = new Map<string, DeployedFunction>();
    for (const [logicalId, res] of Object.entries(template.Resources)) {
      if (res.Type !== 'AWS::Lambda::Function') continue;
      const props = res.Properties ?? {};
      const code = props.Code as { S3Key?: unknown } | undefined;
      if (typeof code?.S3Key !== 'string') throw new Error(`${logicalId}: Code is not an S3 asset (${JSON.stringify(code)})`);
      const assetDir = assetByKey.get(code.S3Key);
      if (!assetDir || !fs.statSync(assetDir).isDirectory()) throw new Error(`${logicalId}: no asset folder for ${code.S3Key} in ${assetsFile}`);
      const environment = (props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
      const handlerName = environment.OPENVBS_HANDLER;
      if (typeof handlerName !== 'string') throw new Error(`${logicalId}: no OPENVBS_HANDLER in its environment`);
      const { file, exportName } = handlerFile(assetDir, String(props.Handler));
      functions.set(handlerName, {
        logicalId,
        handlerName,
        assetDir,
        entryFile: file,
        exportName,
        memoryMb: Number(props.MemorySize ?? 128),
        timeoutSeconds: Number(props.Timeout ?? 3),
        environment,
      });
    }
    return { outdir, template, functions, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}

/** Values for the intrinsics of an environment: `Ref` by logical id (and pseudo parameter), `Fn::GetAtt` by `Id.Attr`. */
export interface Intrinsics {
  refs: Record<string, string>;
  attributes: Record<string, string>;
}

/**
 * The environment Lambda would give the function: every Ref / Fn::GetAtt / Fn::Join / Fn::Sub resolved with
 * `values`; throws naming the variable when one refers to something `values` does not know.
 */
export function resolveEnvironment(fn: DeployedFunction, values: Intrinsics): Record<string, string> {
  const resolve = (name: string, value: unknown): string => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    const obj = (value ?? {}) as Record<string, unknown>;
    if (typeof obj.Ref === 'string') {
      const v = values.refs[obj.Ref];
      if (v === undefined) throw new Error(`${fn.handlerName}: ${name} refers to ${obj.Ref}, which this test does not provision`);
      return v;
    }
    if (Array.isArray(obj['Fn::GetAtt'])) {
      const key = (obj['Fn::GetAtt'] as string[]).join('.');
      const v = values.attributes[key];
      if (v === undefined) throw new Error(`${fn.handlerName}: ${name} refers to ${key}, which this test does not provision`);
      return v;
    }
    if (Array.isArray(obj['Fn::Join'])) {
      const [sep, parts] = obj['Fn::Join'] as [string, unknown[]];
      return parts.map((part) => resolve(name, part)).join(sep);
    }
    if (typeof obj['Fn::Sub'] === 'string') {
      return (obj['Fn::Sub'] as string).replace(/\$\{([^}]+)\}/g, (_m, ref: string) => resolve(name, ref.includes('.') ? { 'Fn::GetAtt': ref.split('.') } : { Ref: ref }));
    }
    throw new Error(`${fn.handlerName}: ${name} has an intrinsic this test cannot resolve: ${JSON.stringify(value)}`);
  };
  return Object.fromEntries(Object.entries(fn.environment).map(([name, value]) => [name, resolve(name, value)]));
}

/** The pseudo parameters, as on the emulator (moto's default account). */
export function pseudoParameters(region: string, accountId = '123456789012'): Record<string, string> {
  return { 'AWS::Region': region, 'AWS::AccountId': accountId, 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': 'OpenVbsStack' };
}

/** vCPUs Lambda gives a function of this memory (at least one). */
export function vcpusFor(memoryMb: number): number {
  return Math.max(1, Math.floor(memoryMb / MB_PER_VCPU));
}

/** Bytes of every file under a folder. */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

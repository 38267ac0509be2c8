export declare const CHECKOV_VERSION: string;
export interface CheckovFinding {
  checkId: string;
  name: string;
  /** `<Type>.<LogicalId>`, e.g. `AWS::Lambda::Function.FnApi`. */
  resource: string;
}
export interface CheckovReport {
  passed: number;
  failed: CheckovFinding[];
  skipped: Array<CheckovFinding & { comment: string }>;
}
export declare function installCheckov(opts?: { quiet?: boolean }): string;
export declare function runCheckov(templateFile: string): Promise<CheckovReport>;
export declare function checkStack(): Promise<CheckovReport>;

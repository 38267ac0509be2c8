// Length and character rules for the free-text fields of requests (names, descriptions).
import { badRequest } from './errors.ts';

export interface TextRule {
  /** How the message names the field, e.g. "backup description". */
  what: string;
  max: number;
  /** Default 0: may be empty. */
  min?: number;
  /** Refuse `<` and `>` (VBS descriptions). */
  noAngleBrackets?: boolean;
}

/** Length in characters (code points), as VBS counts them. */
export const charLength = (text: string) => [...text].length;

/** Throws a 400 with `code` unless `text` follows `rule`; absent text passes. */
export function checkText(text: string | undefined, code: string, rule: TextRule): void {
  if (text === undefined) return;
  const min = rule.min ?? 0;
  const length = charLength(text);
  if (length >= min && length <= rule.max && !(rule.noAngleBrackets && /[<>]/.test(text))) return;
  const range = min > 0 ? `${min}-${rule.max} characters` : `at most ${rule.max} characters`;
  throw badRequest(code, `${rule.what} must be ${range}${rule.noAngleBrackets ? ' without "<" or ">"' : ''}`);
}

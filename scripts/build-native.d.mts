export declare const NATIVE_DIR: string;
export declare const SEEKMAP: string;
export declare function buildNative(opts?: { quiet?: boolean }): string | undefined;

export declare const MOTO_VERSION: string;
export declare function installMoto(opts?: { quiet?: boolean }): string;
export declare function freePort(): Promise<number>;
export declare function startMoto(opts?: { port?: number; quiet?: boolean }): Promise<{ endpoint: string; port: number; stop(): Promise<void> }>;

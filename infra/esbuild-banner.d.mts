/** What every esbuild bundle of OpenVBS starts with: `require` for the CommonJS dependencies. */
export declare const ESBUILD_BANNER: string;

/** Every bundle `npm start` and the benches run, by name: its entry point (relative to the repository root). */
export declare const BUNDLES: { readonly service: string; readonly race: string };
export type BundleName = keyof typeof BUNDLES;
/** The file a bundle's entry is written to. */
export declare function bundleEntry(name: BundleName): string;
/** Builds bundle `name` into dist/<name>/ when its sources changed; resolves to its entry file. */
export declare function build(name: BundleName): Promise<string>;

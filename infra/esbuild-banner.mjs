// What every esbuild bundle of OpenVBS starts with, the Lambda functions' (constructs/functions.ts) and
// `npm start`'s (scripts/build.mjs): ES module bundles whose CommonJS dependencies (the AWS SDK's) call
// require. Plain JavaScript, so a build at start-up needs no type stripping to read it.
export const ESBUILD_BANNER = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

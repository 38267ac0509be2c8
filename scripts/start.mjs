// `npm start`: builds the service bundle when its sources changed (scripts/build.mjs), then runs it in this
// very process, so signals reach the service itself and nothing is left between npm and it.
import { pathToFileURL } from 'node:url';
import { build } from './build.mjs';

const entry = await build('service');
await import(pathToFileURL(entry).href);

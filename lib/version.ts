import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './native.js';

/** The package version, written into every model file. */
export const version: string = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

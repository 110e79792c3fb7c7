#!/usr/bin/env node
// sentinel: the gateway (compiled dist/ when built, else the TypeScript sources through tsx).
import { launch } from './launch.mjs';

await launch('src/cli/main');

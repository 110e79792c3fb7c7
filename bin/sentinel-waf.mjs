#!/usr/bin/env node
// sentinel-waf: OWASP CRS WAF agent for Sentinel (compiled dist/ when built, else tsx).
import { launch } from './launch.mjs';

await launch('src/waf/agent/main');

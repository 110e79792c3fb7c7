#!/usr/bin/env node
// sentinel-waf: OWASP CRS WAF agent for Sentinel (TypeScript sources run through tsx).
import { register } from 'tsx/esm/api';

register();
await import('../src/waf/agent/main.ts');

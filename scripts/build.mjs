#!/usr/bin/env node
// npm run build: compile src/, plugins/ and agents/ to dist/ (tsconfig.build.json), then copy the
// files the programs read at run time (every non-TypeScript file under those folders, e.g.
// src/waf/crs/recommended.conf, and config/default.kdl), then stamp the build (bin/launch.mjs
// runs dist/ only when the stamp exists and is newer than the sources).
//   node scripts/build.mjs [--out-dir DIR]   (default dist/)
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const flag = process.argv.indexOf('--out-dir');
const outDir = resolve(flag >= 0 && process.argv[flag + 1] ? process.argv[flag + 1] : join(root, 'dist'));

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], { stdio: 'inherit', cwd: root });

function copyAssets(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) copyAssets(path);
    else if (!entry.name.endsWith('.ts')) {
      const target = join(outDir, relative(root, path));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(path, target);
    }
  }
}
for (const d of ['src', 'plugins', 'agents']) copyAssets(join(root, d));
// The embedded default config: src/config/load.ts looks for it at dist/config/default.kdl.
mkdirSync(join(outDir, 'config'), { recursive: true });
copyFileSync(join(root, 'config', 'default.kdl'), join(outDir, 'config', 'default.kdl'));

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(outDir, 'build-info.json'), `${JSON.stringify({ version, builtAt: new Date().toISOString() })}\n`);
process.stdout.write(`built ${relative(root, outDir) || outDir}\n`);

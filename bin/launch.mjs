// Shared by the bin/ launchers: run the compiled build (dist/) when it is there and current,
// else the TypeScript sources through tsx (a development checkout, where tsx is a devDependency).
// An installed package ships dist/ without the sources, so it always runs the compiled code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Written last by scripts/build.mjs: a dist/ without it is missing or half built. */
const stampPath = join(root, 'dist', 'build-info.json');
const sourceDirs = ['src', 'plugins', 'agents'];

function newestSourceMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** True when dist/ holds `entry` and no source file changed after the build (no stale runs). */
function distIsCurrent(entry) {
  if (!existsSync(join(root, 'dist', `${entry}.js`)) || !existsSync(stampPath)) return false;
  if (!existsSync(join(root, `${entry}.ts`))) return true;
  const built = statSync(stampPath).mtimeMs;
  const stale = sourceDirs.some((d) => existsSync(join(root, d)) && newestSourceMtime(join(root, d)) > built);
  if (stale) process.stderr.write('note: dist/ is older than the sources, running them through tsx (npm run build refreshes it)\n');
  return !stale;
}

/** Imports the program `entry` (a path from the package root without extension, e.g. src/cli/main). */
export async function launch(entry) {
  if (distIsCurrent(entry)) return import(pathToFileURL(join(root, 'dist', `${entry}.js`)).href);
  const source = join(root, `${entry}.ts`);
  if (!existsSync(source)) {
    process.stderr.write(`sentinel: no compiled build at dist/${entry}.js and no sources: run "npm run build"\n`);
    process.exit(1);
  }
  const { register } = await import('tsx/esm/api');
  register();
  return import(pathToFileURL(source).href);
}

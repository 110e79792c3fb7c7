// What a config text compiles to, as `path: message` lines: the error and warning lines of the
// ConfigError it throws, or none and the compiled config's warnings. For config-check table tests.
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/diagnostics.ts';

export function configDiagnostics(text: string, opts: { baseDir?: string } = {}): { errors: string[]; warnings: string[] } {
  try {
    const c = loadConfigText(text, opts);
    return { errors: [], warnings: c.warnings.map((w) => `${w.path}: ${w.message}`) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const pick = (s: 'error' | 'warning') => err.diagnostics.filter((d) => d.severity === s).map((d) => `${d.path}: ${d.message}`);
    return { errors: pick('error'), warnings: pick('warning') };
  }
}

/** Only the error lines (none when the config loads). */
export function configErrors(text: string, opts: { baseDir?: string } = {}): string[] {
  return configDiagnostics(text, opts).errors;
}

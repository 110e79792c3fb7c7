#!/usr/bin/env bash
# The project's test command (npm test): type-check, lint, every unit/integration test,
# then the conformance suites. Each suite prints its own "N passed, N failed" line.
set -euo pipefail
shopt -s globstar nullglob
cd "$(dirname "$0")/.."
npm run -s typecheck
npm run -s lint
files=(test/**/*.test.ts)
node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
# Conformance suites (CRS, SecLang operators, libinjection) read ../shared/conformance.
if compgen -G "test/conformance/suites/*.ts" >/dev/null; then
  npm run -s conformance -- all
fi

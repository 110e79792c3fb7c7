#!/usr/bin/env bash
# The project's test command (npm test): type-check, lint, every unit/integration test,
# then the conformance suites. Each suite prints its own "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s typecheck
npm run -s lint
# The test files to run (test/select.ts): every test/**/*.test.ts, less those whose third-party
# data (../shared/conformance) is missing: skipped with a loud line outside CI; in CI, fails here.
list=$(node --import tsx test/select.ts files)
mapfile -t files <<<"$list"
# The TAP stream is also kept in a file so that a failure is repeated at the very end: CI logs
# often show only their tail, and the failing test would otherwise be thousands of lines up.
tap=$(mktemp "${TMPDIR:-/tmp}/sentinel-tests.XXXXXX.tap")
trap 'rm -f "$tap"' EXIT
status=0
node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}" | tee "$tap" || status=$?
if [ "$status" -ne 0 ]; then
  echo
  echo "=== failed tests (repeated from above) ==="
  # A failing test's "not ok" line and its indented diagnostics, up to the next test line.
  awk '/^ *not ok /{show=1; print; next} /^ *(ok|not ok|# Subtest:) /{show=0} show' "$tap" | head -n 400
  exit "$status"
fi
# Conformance suites (CRS, SecLang operators, libinjection) read ../shared/conformance: those whose
# data is here (test/select.ts, as above).
suites=$(node --import tsx test/select.ts suites)
if [ -n "$suites" ]; then
  # shellcheck disable=SC2086 # one suite name a word
  npm run -s conformance -- $suites
fi

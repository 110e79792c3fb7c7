#!/usr/bin/env bash
# One-command setup on a fresh Debian machine: the system packages the tests and benchmarks use
# (installed only when missing; needs root or sudo), then the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(redis-server memcached openssl curl nghttp2-client nginx haproxy wrk util-linux dnsmasq unzip prometheus rsyslog rsyslog-gnutls chromium patch)
need=()
for pkg in "${pkgs[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Debian starts these as system services; the tests start their own on free ports instead
# (prometheus is installed for promtool only: test/integration/metrics; rsyslog and its TLS driver for the audit
# syslog test, which runs its own rsyslogd: test/integration/syslog; chromium for the status page test,
# driven by playwright-core without a browser download: test/integration/status; patch for the
# migrate test, which applies `sentinel migrate`'s diff: test/unit/cli/migrate.test.ts).
for svc in nginx redis-server memcached haproxy dnsmasq prometheus rsyslog; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true
  elif command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
npm ci --no-audit --no-fund
# A real Helm for the chart tests (test/integration/helm): pinned, checksummed, into .cache/helm/.
bash scripts/fetch-helm.sh >/dev/null

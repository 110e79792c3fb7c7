#!/usr/bin/env bash
# Installs the OWASP Core Rule Set that sentinel-waf loads: downloads the pinned release tarball
# from its official GitHub release URL, refuses it unless its sha256 is the pinned one, and
# extracts rules/, crs-setup.conf.example and LICENSE into DEST (the container image runs this
# at build time with DEST=/usr/share/sentinel/crs, the agent's default location).
#
#   scripts/fetch-crs.sh [--dest DIR]                       download + verify + extract
#   scripts/fetch-crs.sh --from-file TARBALL [--sha256 HEX] [--dest DIR]
#                                                           verify + extract a tarball you have
#
# The pinned sha256 below was NOT checked against the download: the machine this was written on
# has no route to github.com. It is the sha256 of `git archive --format=tar.gz
# --prefix=coreruleset-4.28.0/ v4.28.0` of the tag's commit (55b09f5acfd16413e7b31041100711ceb7adc89c),
# which is how GitHub builds its tag archives. If the first real download does not match, the
# script refuses it (nothing is installed): compare with the release page, then update CRS_SHA256.
set -euo pipefail

CRS_VERSION="4.28.0"
CRS_URL="https://github.com/coreruleset/coreruleset/archive/refs/tags/v${CRS_VERSION}.tar.gz"
CRS_SHA256="ed9bc9d5bc4f97ba1aca352e66b9bd50ef99bd6eb61ae43f8507466c56568b40"

dest="/usr/share/sentinel/crs"
from_file=""
want="$CRS_SHA256"
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
    --from-file) from_file="${2:?--from-file needs a tarball}"; shift 2 ;;
    --sha256) want="${2:?--sha256 needs a hex digest}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch-crs.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$work/crs.tar.gz"
if [ -n "$from_file" ]; then
  cp "$from_file" "$tarball"
else
  echo "fetch-crs.sh: downloading OWASP CRS v${CRS_VERSION} from ${CRS_URL}" >&2
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$tarball" "$CRS_URL"
  elif command -v wget >/dev/null 2>&1; then wget -q -O "$tarball" "$CRS_URL"
  else node -e 'const [u, f] = process.argv.slice(1); fetch(u).then(async (r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); require("fs").writeFileSync(f, Buffer.from(await r.arrayBuffer())); })' "$CRS_URL" "$tarball"
  fi
fi

got="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then
  echo "fetch-crs.sh: sha256 mismatch for ${from_file:-$CRS_URL}: expected $want, got $got; nothing installed" >&2
  exit 1
fi

mkdir -p "$work/x"
tar -xzf "$tarball" -C "$work/x" --strip-components=1
if [ ! -d "$work/x/rules" ] || [ ! -f "$work/x/crs-setup.conf.example" ]; then
  echo "fetch-crs.sh: the tarball has no rules/ or crs-setup.conf.example at its top level; nothing installed" >&2
  exit 1
fi
# Assemble beside DEST, then swap in one rename: a failed run never leaves half a rule set.
mkdir -p "$(dirname "$dest")"
stage="$(mktemp -d "${dest%/}.new.XXXXXX")"
cp -R "$work/x/rules" "$work/x/crs-setup.conf.example" "$stage/"
[ -f "$work/x/LICENSE" ] && cp "$work/x/LICENSE" "$stage/"
chmod -R a+rX "$stage"
rm -rf "$dest"
mv "$stage" "$dest"
echo "fetch-crs.sh: OWASP CRS (sha256 $got) installed in $dest" >&2

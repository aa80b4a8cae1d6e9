#!/usr/bin/env bash
# Fill the host-side wheel cache the agent image installs from.
#
# The image build runs `pip install --no-index` (no network in the build, and
# a rebuild after a code change does not touch PyPI), so every runtime
# dependency of the project must be here as a wheel for CPython 3.11 on
# x86_64 Linux. The host is Debian bookworm with CPython 3.11, like the base
# image, so `pip wheel` on the host gives exactly that: binary wheels from
# PyPI where they exist, and a wheel built here for any sdist-only package.
# setuptools is cached too: the Dockerfile builds the project's own wheel
# from source in a builder stage, offline.
#
# The cache is stale when the dependency list in pyproject.toml changes (or
# the Python minor version does); otherwise this script does nothing unless
# FORCE=1.
#   WHEEL_CACHE  cache dir  (default images/.cache/wheels)
#   PY           python     (default python3)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PY:-python3}"
CACHE="${WHEEL_CACHE:-$HERE/.cache/wheels}"

log() { printf '[build-wheels] %s\n' "$*" >&2; }

# The requirement lines: runtime deps from pyproject.toml + build backend.
reqs="$("$PY" - "$ROOT/pyproject.toml" <<'PYEOF'
import sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))
reqs = list(data["project"].get("dependencies", []))
reqs += list(data.get("build-system", {}).get("requires", []))
print("\n".join(reqs))
PYEOF
)"
pyver="$("$PY" -c 'import sys, platform; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')"
stamp="$(printf '%s\n%s\n' "$pyver" "$reqs" | sha256sum | cut -d' ' -f1)"

if [[ "${FORCE:-0}" != "1" && -f "$CACHE/.stamp" && "$(cat "$CACHE/.stamp")" == "$stamp" ]]; then
    log "up to date ($(ls "$CACHE"/*.whl | wc -l) wheels in $CACHE)"
    exit 0
fi

case "$pyver" in
    cp311-x86_64) ;;
    *) log "WARNING: host python is $pyver; the image needs cp311-x86_64 wheels" ;;
esac

start=$(date +%s)
mkdir -p "$(dirname "$CACHE")"
tmp="$(mktemp -d "$(dirname "$CACHE")/wheels.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$reqs" >"$tmp/requirements.txt"
log "downloading/building wheels for $pyver into $CACHE"
# PIP_FIND_LINKS may point at a local wheel dir on some machines; harmless.
"$PY" -m pip wheel --quiet --prefer-binary --wheel-dir "$tmp" -r "$tmp/requirements.txt"
# requirements.txt (ranges from pyproject) is what the Dockerfile installs;
# the build-backend lines are only needed for building the project's wheel.
"$PY" - "$ROOT/pyproject.toml" >"$tmp/requirements.txt" <<'PYEOF'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"].get("dependencies", [])))
PYEOF
"$PY" - "$ROOT/pyproject.toml" >"$tmp/build-requirements.txt" <<'PYEOF'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb")).get("build-system", {}).get("requires", [])))
PYEOF
echo "$stamp" >"$tmp/.stamp"
rm -rf "$CACHE"
mv "$tmp" "$CACHE"
trap - EXIT
log "done in $(( $(date +%s) - start ))s: $(ls "$CACHE"/*.whl | wc -l) wheels, $(du -sh "$CACHE" | cut -f1)"

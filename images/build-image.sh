#!/usr/bin/env bash
# Build the agent image: base image if missing -> wheel cache if stale ->
# docker build. Every step is skipped or cached when nothing changed, so a
# rebuild after a code change takes seconds.
#   IMAGE       (default praxis-agent:latest)
#   BASE_IMAGE  (default praxis-base:bookworm; built here with debootstrap when
#               missing. Any other value, e.g. python:3.11-slim, is used as is.)
#   VERBOSE=1   show the docker build output (else it goes to a log file)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
IMAGE="${IMAGE:-praxis-agent:latest}"
BASE_IMAGE="${BASE_IMAGE:-praxis-base:bookworm}"
CACHE_TAG="${IMAGE%:*}:build-cache"
LOG="$HERE/.cache/build.log"

log() { printf '[build-image] %s\n' "$*" >&2; }
t0=$(date +%s)

if [[ "$BASE_IMAGE" == praxis-base:* ]]; then
    BASE_IMAGE="$BASE_IMAGE" "$HERE/base/build-base.sh"
elif ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "note: $BASE_IMAGE is not local; docker build will try to pull it"
fi
"$HERE/build-wheels.sh"

mkdir -p "$(dirname "$LOG")"
: >"$LOG"
build() {
    if [[ "${VERBOSE:-0}" == "1" ]]; then
        docker build "$@" "$ROOT" 2>&1 | tee -a "$LOG"
    else
        docker build "$@" "$ROOT" >>"$LOG" 2>&1 || { tail -n 60 "$LOG" >&2; return 1; }
    fi
}
old_ids="$(docker image inspect -f '{{.Id}}' "$CACHE_TAG" "$IMAGE" 2>/dev/null || true)"
t1=$(date +%s)
# The builder stage ("project", which sits on "deps") gets a tag of its own:
# the classic builder keeps intermediate stages only as untagged images, and
# the prune below would otherwise delete the layer cache it needs next time.
build -f "$ROOT/images/agent/Dockerfile" --build-arg BASE_IMAGE="$BASE_IMAGE" \
      --target project -t "$CACHE_TAG"
build -f "$ROOT/images/agent/Dockerfile" --build-arg BASE_IMAGE="$BASE_IMAGE" \
      -t "$IMAGE"
# Remove what this build replaced (the previous build-cache and image, now
# untagged; docker rmi takes their unshared parent layers along). An old
# image still used by a container stays until `make clean`.
new_ids="$(docker image inspect -f '{{.Id}}' "$CACHE_TAG" "$IMAGE")"
for id in $old_ids; do
    grep -qx "$id" <<<"$new_ids" || docker rmi "$id" >/dev/null 2>&1 || true
done

size="$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
log "$IMAGE built: docker build $(( $(date +%s) - t1 ))s, total $(( $(date +%s) - t0 ))s, $size (log: ${LOG#$ROOT/})"

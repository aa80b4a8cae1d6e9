#!/usr/bin/env bash
# Build praxis-prometheus:latest: Debian's `prometheus` package on the same
# base image as the agents. No registry and no network inside the build: the
# .deb files (prometheus and what the base image lacks, resolved against the
# base image's own dpkg status) are downloaded on the host into
# images/prometheus/.debs first (gitignored), like the agents' wheel cache.
# The build context is images/prometheus alone.
#   PROM_IMAGE  (default praxis-prometheus:latest)
#   BASE_IMAGE  (default praxis-base:bookworm; built with debootstrap when missing)
#   FORCE=1     download the packages again
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROM_IMAGE="${PROM_IMAGE:-praxis-prometheus:latest}"
BASE_IMAGE="${BASE_IMAGE:-praxis-base:bookworm}"
DEBS="$HERE/.debs"

log() { printf '[build-prometheus] %s\n' "$*" >&2; }

if [[ "$BASE_IMAGE" == praxis-base:* ]]; then
    BASE_IMAGE="$BASE_IMAGE" "$ROOT/images/base/build-base.sh"
fi

if [[ "${FORCE:-0}" == "1" ]] || ! compgen -G "$DEBS/prometheus_*.deb" >/dev/null; then
    log "downloading Debian's prometheus and its missing dependencies into $DEBS"
    rm -rf "$DEBS"
    mkdir -p "$DEBS/partial"
    status="$(mktemp)"
    trap 'rm -f "$status"' EXIT
    # Resolve against what the base image has installed, not the host.
    docker run --rm --network none "$BASE_IMAGE" cat /var/lib/dpkg/status >"$status"
    apt-get -qq -o Dir::State::status="$status" -o Dir::Cache::archives="$DEBS" \
        install --download-only -y --no-install-recommends prometheus >/dev/null
    rm -rf "$DEBS/partial" "$DEBS/lock"
fi

log "docker build -t $PROM_IMAGE"
docker build -q --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$PROM_IMAGE" "$HERE" >/dev/null
log "built $PROM_IMAGE"

#!/usr/bin/env bash
# Build the local base image praxis-base:bookworm from Debian's mirror.
#
# This machine has no container registry (nothing can be pulled), so the base
# image is made with debootstrap and `docker import`. Debian bookworm's python3
# is 3.11, the same minor version as the host, so wheels downloaded on the host
# (images/build-wheels.sh) install inside it unchanged.
#
# Idempotent: does nothing when the image already exists, unless FORCE=1.
#   BASE_IMAGE  image name to create        (default praxis-base:bookworm)
#   MIRROR      Debian mirror                (default http://deb.debian.org/debian)
#   SUITE       Debian suite                 (default bookworm)
#   FORCE=1     rebuild even if the image exists
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-praxis-base:bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SUITE="${SUITE:-bookworm}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${DEBOOTSTRAP_CACHE:-$HERE/../.cache/debootstrap}"

log() { printf '[build-base] %s\n' "$*" >&2; }

if [[ "${FORCE:-0}" != "1" ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE already exists (FORCE=1 to rebuild)"
    exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
    log "debootstrap needs root (run with sudo)"
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mkdir -p "$CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"   # debootstrap wants an absolute path
ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/praxis-rootfs.XXXXXX")"
cleanup() { rm -rf --one-file-system "$ROOTFS"; }
trap cleanup EXIT

start=$(date +%s)
log "debootstrap $SUITE into $ROOTFS (cache: $CACHE_DIR)"
debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,curl \
    --cache-dir="$CACHE_DIR" \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
        tail -n 40 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"

log "trimming"
# Package lists, caches, docs, man pages, locales and logs are not needed at
# run time. Docker bind-mounts /dev, /proc, /sys, /etc/hosts, /etc/hostname
# and /etc/resolv.conf itself, so the host's copies are not shipped.
rm -rf "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/var/cache/apt/* \
       "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/var/log/* \
       "$ROOTFS"/usr/share/doc/* \
       "$ROOTFS"/usr/share/man/* \
       "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/usr/share/lintian \
       "$ROOTFS"/usr/share/linda \
       "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* \
       "$ROOTFS"/dev/* "$ROOTFS"/proc/* "$ROOTFS"/sys/* \
       "$ROOTFS"/etc/hostname "$ROOTFS"/etc/resolv.conf
find "$ROOTFS"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
find "$ROOTFS"/usr/lib/python3* -type d -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
# Keep the image small for future apt-get runs too.
cat >"$ROOTFS"/etc/dpkg/dpkg.cfg.d/01-praxis-nodoc <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$ROOTFS"/etc/apt/apt.conf.d/01-praxis-norecommends

log "importing as $BASE_IMAGE"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE + python3 python3-venv ca-certificates curl" \
    - "$BASE_IMAGE" >/dev/null

log "done in $(( $(date +%s) - start ))s: $(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

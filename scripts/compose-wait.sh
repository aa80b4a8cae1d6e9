#!/usr/bin/env bash
# Wait until every container of a compose project is running and healthy.
#
#   scripts/compose-wait.sh PROJECT [TIMEOUT_SECONDS]
#
# Compose v1 (docker-compose 1.29) has no `up --wait`, so this polls
# `docker inspect` health status instead; it works the same under v2. Looks
# containers up by the label both versions set (com.docker.compose.project),
# so it needs no compose command. A container without a healthcheck counts
# once it is running. On timeout: prints each container's state and the last
# log lines of the ones that are not healthy, exits 1.
set -euo pipefail

PROJECT="${1:?usage: $0 PROJECT [TIMEOUT_SECONDS]}"
TIMEOUT="${2:-180}"
deadline=$(( $(date +%s) + TIMEOUT ))
start=$(date +%s)

states() {
    local ids
    ids="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
    [[ -n "$ids" ]] || return 0
    # name  status  health ("none" without a healthcheck)
    docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids \
        | sed 's#^/##' | sort
}

while :; do
    lines="$(states)"
    if [[ -z "$lines" ]]; then
        pending="no containers"
    else
        pending="$(awk '!($2 == "running" && ($3 == "healthy" || $3 == "none")) {print $1 "(" $2 "/" $3 ")"}' <<<"$lines" | xargs echo)"
    fi
    if [[ -z "$pending" ]]; then
        n=$(wc -l <<<"$lines")
        echo "[wait] $n containers of $PROJECT healthy after $(( $(date +%s) - start ))s" >&2
        exit 0
    fi
    if (( $(date +%s) >= deadline )); then
        echo "[wait] timeout after ${TIMEOUT}s; not healthy: $pending" >&2
        printf '%s\n' "$lines" >&2
        for c in $(awk '!($2 == "running" && ($3 == "healthy" || $3 == "none")) {print $1}' <<<"$lines"); do
            echo "----- last log lines of $c" >&2
            docker logs --tail 30 "$c" 2>&1 | sed 's/^/  /' >&2 || true
        done
        exit 1
    fi
    sleep 1
done

#!/usr/bin/env bash
# Wait until every container of a compose project is running and healthy.
#
#   scripts/compose-wait.sh PROJECT [TIMEOUT_SECONDS]
#
# Compose v1 (docker-compose 1.29) has no `up --wait`, so this polls instead;
# it works the same under v2. Containers are found by the label both versions
# set (com.docker.compose.project), so it needs no compose command.
#
# Healthy means: Docker's health status is "healthy", OR the container's own
# GET /health answers 200 over HTTP (read here, from the host, on the
# container's address on the project network, port $API_PORT of the
# container, default 8000). The second is what makes `make up` fast: workers
# are probed by Docker only every PRAXIS_WORKER_HEALTH_INTERVAL (60 s by
# default, to keep the Docker daemon quiet, see docker-compose.yml), so their
# Docker status stays "starting" long after they answer. Without curl, or
# when the container address is not reachable from here (Docker Desktop),
# only Docker's status counts. A container without a healthcheck counts once
# it is running. On timeout: prints each container's state and the last log
# lines of the ones that are not healthy, exits 1.
set -euo pipefail

PROJECT="${1:?usage: $0 PROJECT [TIMEOUT_SECONDS]}"
TIMEOUT="${2:-180}"
POLL="${COMPOSE_WAIT_POLL:-0.5}"
deadline=$(( $(date +%s) + TIMEOUT ))
start=$(date +%s)
have_curl=0
command -v curl >/dev/null 2>&1 && have_curl=1
declare -A ok_http=()   # container name -> 1 once its /health answered 200

states() {
    local ids
    ids="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
    [[ -n "$ids" ]] || return 0
    # name status health ip api_port
    docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{range .NetworkSettings.Networks}}{{if .IPAddress}}{{.IPAddress}} {{end}}{{end}}- {{range .Config.Env}}{{.}} {{end}}' $ids \
        | sed 's#^/##' \
        | awk '{ port = 8000; ip = "-";
                 for (i = 4; i <= NF; i++) if ($i != "-") { ip = $i; break }
                 for (i = 4; i <= NF; i++) if ($i ~ /^API_PORT=[0-9]+$/) { split($i, kv, "="); port = kv[2] }
                 print $1, $2, $3, ip, port }' \
        | sort
}

# Probe /health of the running containers not yet known healthy, in parallel.
probe_http() {
    (( have_curl )) || return 0
    local name status health ip port pids=() names=() i
    while read -r name status health ip port; do
        [[ "$status" == running && "$health" != healthy && "$health" != none && "$ip" != - ]] || continue
        [[ -z "${ok_http[$name]:-}" ]] || continue
        curl -fsS -o /dev/null -m 1 "http://$ip:$port/health" 2>/dev/null &
        pids+=($!); names+=("$name")
    done <<<"$1"
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then ok_http[${names[$i]}]=1; fi
    done
}

pending_of() {
    local name status health ip port out=()
    while read -r name status health ip port; do
        [[ -n "$name" ]] || continue
        if [[ "$status" == running && ( "$health" == healthy || "$health" == none || -n "${ok_http[$name]:-}" ) ]]; then
            continue
        fi
        out+=("$name($status/$health)")
    done <<<"$1"
    echo "${out[*]:-}"
}

while :; do
    lines="$(states)"
    if [[ -z "$lines" ]]; then
        pending="no containers"
    else
        probe_http "$lines"
        pending="$(pending_of "$lines")"
    fi
    if [[ -z "$pending" ]]; then
        n=$(wc -l <<<"$lines")
        echo "[wait] $n containers of $PROJECT healthy after $(( $(date +%s) - start ))s" >&2
        exit 0
    fi
    if (( $(date +%s) >= deadline )); then
        echo "[wait] timeout after ${TIMEOUT}s; not healthy: $pending" >&2
        printf '%s\n' "$lines" | awk '{print $1, $2, $3}' >&2
        for c in $(awk '{print $1}' <<<"$lines"); do
            [[ " $pending " == *" $c("* ]] || continue
            echo "----- last log lines of $c" >&2
            docker logs --tail 30 "$c" 2>&1 | sed 's/^/  /' >&2 || true
        done
        exit 1
    fi
    sleep "$POLL"
done

#!/usr/bin/env bash
# Praxis on Docker Swarm (single node here, any swarm elsewhere).
#
#   deploy/swarm/swarm.sh up          # swarm init if none, keys, stack deploy, wait healthy
#   deploy/swarm/swarm.sh scale N     # N generic workers, wait until they joined
#   deploy/swarm/swarm.sh status      # services + the orchestrator's peers
#   deploy/swarm/swarm.sh down        # stack rm; leave the swarm only if `up` created it
#
# Environment: STACK (praxis), IMAGE (praxis-agent:latest), PRAXIS_API_PORT
# (8000), PRAXIS_DEPLOY_KEYS (deploy/swarm/.keys: identity secrets, kept by
# `down` so the next `up` has the same PeerIDs), PRAXIS_WORKERS (2),
# WAIT_TIMEOUT (180), PY (python3).
#
# Whether `up` created the swarm is recorded in the swarm itself, as the node
# label praxis.swarm-created-by=swarm-up: it vanishes with the swarm, so it can
# never outlive it or be left behind on the host.
#
# `docker swarm leave --force` detaches the containers of compose projects on
# user-defined networks (moby/moby#42877). `down` therefore leaves only when
# no container outside this stack sits on a user-defined network, and no
# other stack or service runs; otherwise it keeps the swarm and says why.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STACK="${STACK:-praxis}"
IMAGE="${IMAGE:-praxis-agent:latest}"
PY="${PY:-python3}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-180}"
export PRAXIS_IMAGE="$IMAGE"
export PRAXIS_API_PORT="${PRAXIS_API_PORT:-8000}"
export PRAXIS_DEPLOY_KEYS="${PRAXIS_DEPLOY_KEYS:-$HERE/.keys}"
export PRAXIS_WORKERS="${PRAXIS_WORKERS:-2}"
API_URL="http://127.0.0.1:$PRAXIS_API_PORT"
LABEL=praxis.swarm-created-by

say() { printf '[swarm] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s; }

swarm_state() { docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
is_manager() { [[ "$(docker info -f '{{.Swarm.ControlAvailable}}' 2>/dev/null)" == "true" ]]; }
created_by_us() {
    [[ "$(docker node inspect self -f "{{index .Spec.Labels \"$LABEL\"}}" 2>/dev/null)" == "swarm-up" ]]
}
stack_services() { docker service ls -q --filter "label=com.docker.stack.namespace=$STACK"; }
stack_containers() { docker ps -aq --filter "label=com.docker.stack.namespace=$STACK"; }

ensure_swarm() {
    case "$(swarm_state)" in
        inactive)
            docker swarm init --advertise-addr 127.0.0.1 >/dev/null
            docker node update --label-add "$LABEL=swarm-up" "$(docker info -f '{{.Swarm.NodeID}}')" >/dev/null
            say "initialised a single-node swarm (advertise 127.0.0.1); \`make swarm-down\` will leave it"
            ;;
        active)
            is_manager || die "this node is a swarm worker; run this on a manager"
            if created_by_us; then
                say "using the swarm an earlier swarm-up created"
            else
                say "using the existing swarm (not created here: swarm-down will not leave it)"
            fi
            ;;
        *) die "swarm state is '$(swarm_state)'; fix it first (docker info)" ;;
    esac
}

ensure_keys() {
    mkdir -p "$PRAXIS_DEPLOY_KEYS"
    chmod 700 "$PRAXIS_DEPLOY_KEYS"
    "$PY" "$ROOT/gen_keys.py" --deploy-dir "$PRAXIS_DEPLOY_KEYS" >&2
    # Host-mode publishing listens on every interface (Swarm has no host IP
    # for published ports): tool calls always need a token here.
    if [[ -z "${PRAXIS_API_TOKEN:-}" ]]; then
        if [[ ! -s "$PRAXIS_DEPLOY_KEYS/api.token" ]]; then
            (umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(16))' >"$PRAXIS_DEPLOY_KEYS/api.token")
        fi
        PRAXIS_API_TOKEN="$(cat "$PRAXIS_DEPLOY_KEYS/api.token")"
    fi
    export PRAXIS_API_TOKEN
}

# Wait until every service of the stack runs all its replicas (a task with a
# healthcheck counts as running only once healthy).
wait_converged() {
    local deadline=$(( $(now) + WAIT_TIMEOUT )) pending
    while :; do
        pending="$(docker service ls --filter "label=com.docker.stack.namespace=$STACK" \
                     --format '{{.Name}} {{.Replicas}}' | awk '{split($2,r,"/"); if (r[1]!=r[2]) print $1" "$2}')"
        if [[ -z "$pending" && -n "$(stack_services)" ]]; then return 0; fi
        if (( $(now) >= deadline )); then
            say "not converged after ${WAIT_TIMEOUT}s: ${pending//$'\n'/, }"
            docker stack ps --no-trunc "$STACK" | head -30 >&2 || true
            return 1
        fi
        sleep 1
    done
}

expected_workers() {
    docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Name}} {{.Replicas}}' |
        awk -v o="${STACK}_orchestrator" '$1 != o {split($2,r,"/"); n += r[2]} END {print n+0}'
}

show_status() {
    local expect="${1:-$(expected_workers)}"
    "$PY" "$ROOT/scripts/cluster-status.py" "$API_URL" --expect "$expect" --timeout "${2:-60}"
}

cmd_up() {
    local t0; t0=$(now)
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE not found: run \`make image\`"
    ensure_swarm
    ensure_keys
    docker stack deploy --resolve-image never --prune -c "$HERE/stack.yml" "$STACK" >&2
    wait_converged
    show_status "" 90
    say "stack $STACK up in $(( $(now) - t0 ))s: API $API_URL (token in $PRAXIS_DEPLOY_KEYS/api.token unless PRAXIS_API_TOKEN is set)"
}

cmd_scale() {
    local n="${1:-}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "usage: swarm.sh scale N"
    [[ -n "$(stack_services)" ]] || die "stack $STACK is not deployed: run \`make swarm-up\`"
    docker service scale --detach "${STACK}_worker=$n" >/dev/null
    wait_converged
    show_status "" 90
}

cmd_status() {
    if [[ "$(swarm_state)" != active ]]; then say "no swarm on this node"; return 0; fi
    if [[ -z "$(stack_services)" ]]; then say "stack $STACK is not deployed"; return 0; fi
    docker stack services "$STACK"
    show_status "" 30
}

# Containers outside this stack attached to a user-defined network: a swarm
# leave would detach them (moby/moby#42877).
others_on_user_networks() {
    local id nets
    for id in $(docker ps -q); do
        if [[ -n "$(docker inspect -f '{{index .Config.Labels "com.docker.stack.namespace"}}' "$id")" ]]; then
            continue
        fi
        nets="$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$id")"
        for net in $nets; do
            case "$net" in bridge|host|none) ;; *) docker inspect -f '{{.Name}}' "$id" | sed 's#^/##'; break ;; esac
        done
    done
}

cmd_down() {
    if [[ "$(swarm_state)" != active ]]; then say "no swarm on this node: nothing to do"; return 0; fi
    if [[ -n "$(stack_services)" ]]; then
        docker stack rm "$STACK" >&2
    fi
    # stack rm returns at once; its containers and network go away after.
    local deadline=$(( $(now) + 60 ))
    while [[ -n "$(stack_containers)" || -n "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ]]; do
        (( $(now) < deadline )) || die "stack $STACK still has containers/networks after 60s"
        sleep 1
    done
    # Stopped task containers can keep anonymous volumes; the stack has none,
    # but remove any that carry its label.
    local vols; vols="$(docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK")"
    [[ -z "$vols" ]] || docker volume rm $vols >/dev/null
    say "stack $STACK removed"

    if ! created_by_us; then
        say "keeping the swarm: swarm-up did not create it"
        return 0
    fi
    local why=""
    if [[ -n "$(docker service ls -q)" ]]; then
        why="other services run on it: $(docker service ls --format '{{.Name}}' | tr '\n' ' ')"
    else
        local others; others="$(others_on_user_networks | tr '\n' ' ')"
        [[ -z "$others" ]] || why="containers on user-defined networks would be detached by a swarm leave (moby/moby#42877): $others"
    fi
    if [[ -n "$why" ]]; then
        say "keeping the swarm swarm-up created: $why; run \`make swarm-down\` again once they are gone"
        return 0
    fi
    docker swarm leave --force >/dev/null
    # The bridge Swarm created for egress outlives the swarm; remove it when empty.
    if docker network inspect docker_gwbridge >/dev/null 2>&1; then
        if [[ "$(docker network inspect -f '{{len .Containers}}' docker_gwbridge)" == "0" ]]; then
            docker network rm docker_gwbridge >/dev/null
        else
            say "docker_gwbridge still has endpoints; left in place"
        fi
    fi
    say "left the swarm swarm-up created and removed docker_gwbridge"
}

case "${1:-}" in
    up) cmd_up ;;
    scale) shift; cmd_scale "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    *) echo "usage: $0 up|scale N|status|down" >&2; exit 2 ;;
esac

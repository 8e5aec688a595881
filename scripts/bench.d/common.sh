# shellcheck shell=bash
# Shared by the benchmarks of scripts/bench (sourced by it, after
# scripts/lib.sh): a private workspace and orch state dir, one EXIT trap that removes everything
# they created (orch apps, the daemon, Swarm stacks, the swarm itself) even after a failure,
# bounded polling, and a background sampler. Every wait here has a time limit.

# Globals the EXIT trap reads (it runs after the subcommand's function returned).
work=""
orch=""
# shellcheck disable=SC2034 # used by bench.d/converge.sh
floor=""
daemon_pid=""
orch_apps=()
stacks=()
swarm_ours=0
gwbridge_ours=0
sampler_pid=""
cleanup_pids=()     # background processes of ours (event streams) still to stop
cleanup_labels=()   # containers carrying one of these labels are removed
cleanup_networks=() # and these networks

# Installs a Debian package when its command is missing (like converge does for docker-compose).
need_command() {
    command -v "$1" >/dev/null 2>&1 && return 0
    orch_log "installing $2 (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null
}

# Setup, tools, orch built, the workspace made and the cleanup trap set.
bench_prepare() {
    ./scripts/setup >/dev/null
    need_command jq jq
    build_orch
    work=$(mktemp -d /tmp/orch-bench.XXXXXX)
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Prints the last lines of a log of the workspace to stderr, then fails: the trap removes the
# workspace, so what explains a failure must be shown before.
bench_fail() {
    local log=$1
    shift
    if [ -s "$work/$log" ]; then
        orch_log "last lines of $log:"
        tail -n 15 "$work/$log" >&2
    fi
    orch_die "$*"
}

# Polls "$@" (it prints a count) every 50 ms until the count reaches N; prints the time it
# did. Fails after LIMIT seconds.
poll_count() {
    local limit=$1 n=$2
    shift 2
    local deadline=$((SECONDS + limit)) c
    while :; do
        c=$("$@" 2>/dev/null) || c=0
        if [ "${c:-0}" -ge "$n" ]; then
            now
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# Waits (at most LIMIT seconds) until no container carries any of the labels given.
wait_no_containers() {
    local limit=$1 deadline l left
    shift
    deadline=$((SECONDS + limit))
    while :; do
        left=0
        for l in "$@"; do
            [ -z "$(docker ps -aq --filter "label=$l")" ] || left=1
        done
        [ "$left" = 0 ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# Running containers that are not the benchmark's (its names all start with obench): another
# user's load on the same engine skews the timings, so the results say how much there was.
other_containers() { docker ps --format '{{.Names}}' | grep -cv '^obench' || true; }

# --- orch --------------------------------------------------------------------------------------

orch_cmd() { "$orch" --state "$work/state" "$@"; }

# Starts `orch daemon` on the private state dir (log: $work/daemon.log) and waits until it says
# it runs.
daemon_start() {
    # not through orch_cmd: $! must be orch's pid, not a subshell's, for /proc and for signals
    "$orch" --state "$work/state" daemon --dns off >"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    local i
    for i in $(seq 1 100); do
        if grep -q 'daemon: running' "$work/daemon.log" 2>/dev/null; then
            [ "$(cat "/proc/$daemon_pid/comm" 2>/dev/null)" = orch ] ||
                orch_die "pid $daemon_pid is not the orch daemon"
            return 0
        fi
        kill -0 "$daemon_pid" 2>/dev/null || bench_fail daemon.log "orch daemon exited at start"
        sleep 0.1
    done
    bench_fail daemon.log "orch daemon did not say it runs within 10 s (attempt $i)"
}

# SIGTERM, then SIGKILL after 15 s: a stopped daemon leaves its containers running.
daemon_stop() {
    [ -n "$daemon_pid" ] || return 0
    kill -TERM "$daemon_pid" 2>/dev/null || true
    local i
    for i in $(seq 1 150); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$daemon_pid" 2>/dev/null; then
        orch_warn "orch daemon (pid $daemon_pid) ignored SIGTERM for 15 s; killing it"
        kill -KILL "$daemon_pid" 2>/dev/null || true
    fi
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=""
}

# Number of instances of APP/SERVICE that orch calls running and healthy, the one whose id is
# $2 (if any) not counted. `orch status` probes each instance itself.
orch_healthy() {
    orch_cmd status "$1" -o json |
        jq --arg v "${2:-}" '[.instances[] | select(.state == "running" and .health == "healthy" and .id != $v)] | length'
}

# --- Docker Swarm ------------------------------------------------------------------------------

# Makes this engine a one-node swarm on 127.0.0.1; refuses when it already is in one (that swarm
# is not ours to leave).
swarm_begin() {
    local st
    st=$(docker info --format '{{.Swarm.LocalNodeState}}') || orch_die "the engine does not answer"
    [ "$st" = inactive ] || orch_die "this engine's swarm state is '$st', not inactive: refusing to touch a swarm this script did not create (\`docker swarm leave --force\` if an earlier bench run left it)"
    docker network inspect docker_gwbridge >/dev/null 2>&1 || gwbridge_ours=1
    swarm_ours=1
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
}

# The local image ID (sha256:...) of a tag. Swarm services name their image by it: with a tag,
# the agent asks the registry before every task even with --no-resolve-image; with an ID it
# never does.
image_id() {
    docker image inspect --format '{{.Id}}' "$1" ||
        orch_die "no image $1 on the engine (or the engine does not answer)"
}

# Writes a stack file: service web, image $2, $3 replicas, the demo's own probe as an exec
# health check every 1 s (timeout 1s, retries 3), SIGKILL 1 s after SIGTERM as orch is told.
# A stack file rather than `docker service create --health-cmd`: that flag makes a CMD-SHELL
# check, which needs /bin/sh, and the demo image is FROM scratch.
swarm_stack_file() {
    cat >"$1" <<YAML
version: "3.8"
services:
  web:
    image: $2
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "/orch-demo", "probe"]
      interval: 1s
      timeout: 1s
      retries: 3
    deploy:
      replicas: $3
YAML
}

# Deploys stack $1 from file $2 (never resolving the image against a registry). Fails (status
# 1, the reason in swarm.log) when the engine refuses it.
swarm_deploy() {
    stacks+=("$1")
    timeout 120 docker stack deploy --resolve-image never -c "$2" "$1" >>"$work/swarm.log" 2>&1
}

# Removes stack $1 and waits (bounded) until its containers and network are gone, so the next
# deploy of the same name does not race the network's removal.
swarm_remove() {
    docker stack rm "$1" >>"$work/swarm.log" 2>&1 || true
    wait_no_containers 60 "com.docker.stack.namespace=$1" ||
        orch_warn "containers of stack $1 still there after 60 s"
    local i
    for i in $(seq 1 60); do
        [ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$1")" ] && return 0
        sleep 0.5
    done
    orch_warn "network of stack $1 still there after 30 s"
}

# Task containers of Swarm service $1 that are running and healthy, the one whose (full) id is
# $2 (if any) not counted.
swarm_healthy() {
    docker ps --no-trunc -q --filter "label=com.docker.swarm.service.name=$1" \
        --filter status=running --filter health=healthy |
        awk -v v="${2:-}" 'v == "" || $0 != v' | wc -l
}

# --- sampler -----------------------------------------------------------------------------------

# Runs "$@" every ~$sample_period s (default 0.2) in the background until $work/stop exists or
# LIMIT seconds passed (at most 5000 samples); each output line is prefixed with the time and
# appended to OUT.
sampler_start() {
    local out=$1 limit=$2
    shift 2
    rm -f "$work/stop"
    (
        deadline=$((SECONDS + limit))
        i=0
        while [ ! -e "$work/stop" ] && [ "$SECONDS" -lt "$deadline" ] && [ "$i" -lt 5000 ]; do
            if line=$("$@" 2>/dev/null) && [ -n "$line" ]; then
                printf '%s %s\n' "$(now)" "$line" >>"$out"
            fi
            i=$((i + 1))
            sleep "${sample_period:-0.2}"
        done
    ) &
    sampler_pid=$!
}

sampler_stop() {
    [ -n "$sampler_pid" ] || return 0
    touch "$work/stop"
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
}

# --- cleanup -----------------------------------------------------------------------------------

# The EXIT trap: everything the benchmark created goes, whatever state it failed in.
bench_cleanup() {
    local rc=$? app st
    set +e
    trap - EXIT INT TERM
    sampler_stop
    # an engine restarted under us (another user of this machine) answers again within seconds
    orch_wait_until 60 docker_answers 5 ||
        orch_warn "the engine does not answer: containers, stacks or the swarm may be left"
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        # with the daemon running, delete records and returns; the daemon removes the instances
        for app in "${orch_apps[@]}"; do
            orch_cmd delete --app "$app" >/dev/null 2>&1
        done
        local labels=()
        for app in "${orch_apps[@]}"; do labels+=("orch.app=$app"); done
        [ ${#labels[@]} -eq 0 ] || wait_no_containers 120 "${labels[@]}"
        daemon_stop
    fi
    for app in "${orch_apps[@]}"; do
        # embedded now: removes whatever the daemon left, labelled containers and the network
        orch_cmd delete --app "$app" >/dev/null 2>&1
        remove_label "orch.app=$app"
        docker network rm "orch-$app" >/dev/null 2>&1
    done
    for st in "${stacks[@]}"; do
        docker stack rm "$st" >/dev/null 2>&1
    done
    [ ${#stacks[@]} -eq 0 ] || wait_no_containers 60 "${stacks[@]/#/com.docker.stack.namespace=}"
    local p l
    for p in "${cleanup_pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    for l in "${cleanup_labels[@]}"; do
        remove_label "$l"
    done
    for l in "${cleanup_networks[@]}"; do
        docker network rm "$l" >/dev/null 2>&1
    done
    if [ "$swarm_ours" = 1 ]; then
        docker swarm leave --force >/dev/null 2>&1
        for st in "${stacks[@]}"; do
            remove_label "com.docker.stack.namespace=$st"
            docker network rm "${st}_default" >/dev/null 2>&1
        done
        # swarm init made it and leave keeps it
        [ "$gwbridge_ours" = 0 ] || docker network rm docker_gwbridge >/dev/null 2>&1
    fi
    [ -z "$work" ] || rm -rf "$work"
    exit "$rc"
}

# shellcheck shell=bash disable=SC2154 # work, orch, daemon_pid: globals of bench.d/common.sh
# scripts/bench heal [ROUNDS]: time from `docker kill` of one of 3 instances to 3 healthy ones
# again (none of them the killed one), orch daemon vs Docker Swarm, both deployed for the whole
# run and killed in turn. Sourced by scripts/bench after bench.d/common.sh.

bench_heal() {
    local rounds=${1:-5}
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 20 ]] || orch_die "ROUNDS must be 1..20"
    bench_prepare
    local app=obench-heal stack=obenchheal svc=obenchheal_web limit=120
    orch_apps+=("$app")
    swarm_begin

    cat >"$work/heal.yaml" <<YAML
app: $app
services:
  web:
    image: orch-demo:1
    replicas: 3
    ports: [{name: http, container: 8080}]
    health: {http: /healthz, interval: 1s, timeout: 1s, retries: 3}
    update: {stop_grace: 1s}
YAML
    daemon_start
    orch_cmd apply "$work/heal.yaml" --wait --timeout 120s >"$work/apply.log" 2>&1 ||
        bench_fail apply.log "orch apply --wait of $app failed"
    poll_count 120 3 orch_healthy "$app/web" >/dev/null ||
        bench_fail daemon.log "orch: 3 healthy instances not reached in 120 s"
    swarm_stack_file "$work/stack.yml" "$(image_id orch-demo:1)" 3
    swarm_deploy "$stack" "$work/stack.yml"
    poll_count 120 3 swarm_healthy "$svc" >/dev/null ||
        bench_fail swarm.log "swarm: 3 healthy tasks not reached in 120 s"

    : >"$work/orch"
    : >"$work/swarm"
    local others0
    others0=$(other_containers)
    local r victim t0 t1 lines o s backoffs=""
    for r in $(seq 1 "$rounds"); do
        # both steady (and the previous replacement past its first probes) before a kill
        sleep 2

        victim=$(orch_cmd status "$app/web" -o json |
            jq -r '[.instances[] | select(.state == "running" and .health == "healthy")][0].id')
        [[ $victim =~ ^[0-9a-f]{64}$ ]] || bench_fail daemon.log "orch: no healthy instance to kill"
        lines=$(wc -l <"$work/daemon.log")
        t0=$(now)
        docker kill "$victim" >/dev/null
        t1=$(poll_count "$limit" 3 orch_healthy "$app/web" "$victim") ||
            bench_fail daemon.log "orch: not 3 healthy instances $limit s after the kill (round $r)"
        o=$(elapsed "$t0" "$t1")
        echo "$o" >>"$work/orch"
        # the crash backoff the daemon announced for this kill, to explain the rounds
        backoffs+=" $(tail -n +"$((lines + 1))" "$work/daemon.log" |
            grep -o 'next start in [0-9]*ms' | tail -n 1 | grep -o '[0-9]*ms' || echo '-')"

        victim=$(docker ps --no-trunc -q --filter "label=com.docker.swarm.service.name=$svc" \
            --filter status=running --filter health=healthy | head -n 1)
        [[ $victim =~ ^[0-9a-f]{64}$ ]] || bench_fail swarm.log "swarm: no healthy task to kill"
        t0=$(now)
        docker kill "$victim" >/dev/null
        t1=$(poll_count "$limit" 3 swarm_healthy "$svc" "$victim") ||
            bench_fail swarm.log "swarm: not 3 healthy tasks $limit s after the kill (round $r)"
        s=$(elapsed "$t0" "$t1")
        echo "$s" >>"$work/swarm"
        orch_log "round $r/$rounds: orch ${o}s, swarm ${s}s"
    done

    local om sm
    om=$(median <"$work/orch")
    sm=$(median <"$work/swarm")
    printf 'heal: docker kill 1 of 3 instances -> 3 healthy again, none the killed one\n'
    printf '      median of %d rounds, interleaved (seconds)\n' "$rounds"
    printf '  orch daemon (http probe, 1s):         %s   rounds: %s\n' "$om" "$(paste -sd' ' "$work/orch")"
    printf '    crash backoff the daemon announced: %s\n' "${backoffs# }"
    printf '  docker swarm (exec probe, 1s):        %s   rounds: %s\n' "$sm" "$(paste -sd' ' "$work/swarm")"
    printf '    restart policy: Swarm default (condition any, delay 5s)\n'
    printf '  orch vs swarm (median ratio):         %s\n' "$(ratio "$om" "$sm")"
    printf '  other containers on the engine:       %d at start, %d at end\n' "$others0" "$(other_containers)"
}

# shellcheck shell=bash disable=SC2154 # work, orch, daemon_pid: globals of bench.d/common.sh
# scripts/bench heal [ROUNDS]: time from `docker kill` of one of 3 instances to 3 healthy ones
# again (none of them the killed one), orch daemon vs Docker Swarm, both deployed for the whole
# run and killed in turn. A peer that cannot be deployed, has nothing healthy to kill or does not
# heal within the limit is a result of its round; the other's rounds go on. Sourced by
# scripts/bench after bench.d/common.sh.

# The full id of one healthy instance of each peer.
orch_victim() {
    orch_cmd status "$app/web" -o json |
        jq -r '[.instances[] | select(.state == "running" and .health == "healthy")][0].id'
}
swarm_victim() {
    docker ps --no-trunc -q --filter "label=com.docker.swarm.service.name=$svc" \
        --filter status=running --filter health=healthy | head -n 1
}

# Kills one healthy instance of peer $1 (orch or swarm) and times its healing (round $2);
# appends "round status seconds" to $work/res.$1.
heal_round() {
    local tool=$1 r=$2 victim t0 t1 c
    victim=$("${tool}_victim" 2>/dev/null)
    if ! [[ $victim =~ ^[0-9a-f]{64}$ ]]; then
        echo "$r no_healthy_instance_to_kill -" >>"$work/res.$tool"
        return 0
    fi
    t0=$(now)
    docker kill "$victim" >/dev/null 2>&1
    if [ "$tool" = orch ]; then
        t1=$(poll_count "$limit" 3 orch_healthy "$app/web" "$victim") || t1=""
        c=$(orch_healthy "$app/web" "$victim" 2>/dev/null || echo "?")
    else
        t1=$(poll_count "$limit" 3 swarm_healthy "$svc" "$victim") || t1=""
        c=$(swarm_healthy "$svc" "$victim" 2>/dev/null || echo "?")
    fi
    if [ -n "$t1" ]; then
        echo "$r ok $(elapsed "$t0" "$t1")" >>"$work/res.$tool"
    else
        echo "$r not_healed_in_${limit}s_(${c}_of_3_healthy) -" >>"$work/res.$tool"
    fi
}

heal_rounds_of() {
    awk '{ gsub(/_/, " ", $2); printf "%s%s", (NR > 1 ? " " : ""), ($2 == "ok" ? $3 : "(" $2 ")") }' "$work/res.$1"
}

bench_heal() {
    local rounds=${1:-5}
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 20 ]] || orch_die "ROUNDS must be 1..20"
    bench_prepare
    # globals for heal_round
    app=obench-heal svc=obenchheal_web limit=120
    local stack=obenchheal
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
    # a peer that cannot be set up is reported as such; the other is still measured
    local orch_down="" swarm_down=""
    daemon_start
    if ! timeout 150 "$orch" --state "$work/state" apply "$work/heal.yaml" --wait \
        --timeout 120s >"$work/apply.log" 2>&1; then
        orch_down="orch apply --wait failed: $(tail -n 1 "$work/apply.log")"
    elif ! poll_count 120 3 orch_healthy "$app/web" >/dev/null; then
        orch_down="3 healthy instances not reached in 120 s"
    fi
    local id1
    id1=$(image_id orch-demo:1)
    swarm_stack_file "$work/stack.yml" "$id1" 3
    if ! swarm_deploy "$stack" "$work/stack.yml"; then
        swarm_down="docker stack deploy failed: $(tail -n 1 "$work/swarm.log")"
    elif ! poll_count 120 3 swarm_healthy "$svc" >/dev/null; then
        swarm_down="3 healthy tasks not reached in 120 s ($(swarm_healthy "$svc") were)"
    fi

    : >"$work/res.orch"
    : >"$work/res.swarm"
    local others0
    others0=$(other_containers)
    local r lines backoffs=""
    for r in $(seq 1 "$rounds"); do
        [ -z "$orch_down" ] || [ -z "$swarm_down" ] || break
        # both steady (and the previous replacement past its first probes) before a kill
        sleep 2
        if [ -z "$orch_down" ]; then
            lines=$(wc -l <"$work/daemon.log")
            heal_round orch "$r"
            # the crash backoff the daemon announced for this kill, to explain the rounds
            backoffs+=" $(tail -n +"$((lines + 1))" "$work/daemon.log" |
                grep -o 'next start in [0-9]*ms' | tail -n 1 | grep -o '[0-9]*ms' || echo '-')"
        fi
        if [ -z "$swarm_down" ]; then
            heal_round swarm "$r"
        fi
        orch_log "round $r/$rounds: orch $(awk -v r="$r" '$1 == r { print ($2 == "ok" ? $3 "s" : $2) }' "$work/res.orch"), swarm $(awk -v r="$r" '$1 == r { print ($2 == "ok" ? $3 "s" : $2) }' "$work/res.swarm")"
    done

    local om sm
    om=$(awk '$2 == "ok" { print $3 }' "$work/res.orch" | median)
    sm=$(awk '$2 == "ok" { print $3 }' "$work/res.swarm" | median)
    printf 'heal: docker kill 1 of 3 instances -> 3 healthy again, none the killed one\n'
    printf '      median of the healed rounds of %d, interleaved (seconds)\n' "$rounds"
    if [ -n "$orch_down" ]; then
        printf '  orch daemon (http probe, 1s):         not measured: %s\n' "$orch_down"
    else
        printf '  orch daemon (http probe, 1s):         %s   rounds: %s\n' "$om" "$(heal_rounds_of orch)"
        printf '    crash backoff the daemon announced: %s\n' "${backoffs# }"
    fi
    if [ -n "$swarm_down" ]; then
        printf '  docker swarm (exec probe, 1s):        not measured: %s\n' "$swarm_down"
    else
        printf '  docker swarm (exec probe, 1s):        %s   rounds: %s\n' "$sm" "$(heal_rounds_of swarm)"
    fi
    printf '    restart policy: Swarm default (condition any, delay 5s)\n'
    printf '  orch vs swarm (median ratio):         %s\n' "$(ratio "$om" "$sm")"
    printf '  other containers on the engine:       %d at start, %d at end\n' "$others0" "$(other_containers)"
}

# shellcheck shell=bash disable=SC2154 # work, orch, floor: globals of bench.d/common.sh
# scripts/bench daemon-apps [ROUNDS]: `orch daemon` converging 10 apps x 10 services (one
# instance each, published port, http probe every 1 s) applied back to back, timed from the
# first apply until `orch get` shows all 100 running and healthy; against the engine floor for
# 100 containers (engine_floor, K 16 and 50, the better median) in the same run. Rounds are
# interleaved; everything is removed between runs. Sourced by scripts/bench after
# bench.d/common.sh.

apps_healthy() {
    orch_cmd get -o json | jq '[.services[] | select(.app | startswith("obench-apps"))
        | select(.replicas.desired == 1 and .replicas.running == 1 and .replicas.healthy == 1)] | length'
}

# One daemon run (round $1): apply the 10 apps, wait for 100 healthy, delete them.
apps_orch() {
    local r=$1 t0 t1 a
    rm -rf "$work/state"
    daemon_start
    t0=$(now)
    for a in $(seq 0 9); do
        orch_cmd apply "$work/apps$a.yaml" >>"$work/apply.log" 2>&1 ||
            bench_fail apply.log "orch apply of obench-apps$a failed"
    done
    if t1=$(poll_count 600 100 apps_healthy); then
        echo "$r $(elapsed "$t0" "$t1")" >>"$work/res.apps"
    else
        echo "round $r: only $(apps_healthy) of 100 healthy after 600 s" >>"$work/apps.notes"
    fi
    for a in $(seq 0 9); do
        orch_cmd delete --app "obench-apps$a" >>"$work/apply.log" 2>&1 || true
    done
    local labels=()
    for a in $(seq 0 9); do labels+=("orch.app=obench-apps$a"); done
    wait_no_containers 120 "${labels[@]}" || orch_warn "containers of the apps left after 120 s"
    daemon_stop
    sleep 2
}

# The floor for 100 containers (round $1), each K of the sweep.
apps_floor() {
    local r=$1 k t0 t1
    for k in 16 50; do
        t0=$(now)
        if timeout 300 "$floor" --count 100 --workers "$k" --network orch-floor-net \
            --create-network --alias web --name-prefix bench-web --label bench=orch-floor \
            >>"$work/floor.out" 2>>"$work/floor.log"; then
            t1=$(now)
            echo "$r $(elapsed "$t0" "$t1")" >>"$work/res.floor$k"
        fi
        timeout 120 "$floor" --remove --label bench=orch-floor --network orch-floor-net \
            --workers 16 >/dev/null 2>>"$work/floor.log" || true
        sleep 2
    done
}

bench_daemon_apps() {
    local rounds=${1:-3} a s r
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 10 ]] || orch_die "ROUNDS must be 1..10"
    bench_prepare
    cleanup_labels+=(bench=orch-floor)
    cleanup_networks+=(orch-floor-net)
    for a in $(seq 0 9); do
        orch_apps+=("obench-apps$a")
        {
            echo "app: obench-apps$a"
            echo "services:"
            for s in $(seq 0 9); do
                echo "  s$s:"
                echo "    image: orch-demo:1"
                echo "    ports: [{name: http, container: 8080}]"
                echo "    health: {http: /healthz, interval: 1s, timeout: 1s, retries: 3}"
                echo "    update: {stop_grace: 1s}"
            done
        } >"$work/apps$a.yaml"
    done
    : >"$work/res.apps"
    for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) = 1 ]; then apps_floor "$r"; apps_orch "$r"; else apps_orch "$r"; apps_floor "$r"; fi
        orch_log "round $r/$rounds: floor K=16 $(awk -v r="$r" '$1 == r { print $2 }' "$work/res.floor16" 2>/dev/null)s K=50 $(awk -v r="$r" '$1 == r { print $2 }' "$work/res.floor50" 2>/dev/null)s | orch daemon all healthy $(awk -v r="$r" '$1 == r { print $2 }' "$work/res.apps")s"
    done
    local f16 f50 best o
    f16=$(awk '{ print $2 }' "$work/res.floor16" 2>/dev/null | median)
    f50=$(awk '{ print $2 }' "$work/res.floor50" 2>/dev/null | median)
    best=$f16
    if [ "$f50" != "-" ] && { [ "$best" = "-" ] || awk -v a="$f50" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then best=$f50; fi
    o=$(awk '{ print $2 }' "$work/res.apps" | median)
    printf 'daemon-apps: 10 apps x 10 services, 1 s http probes, median of %d rounds (seconds)\n' "$rounds"
    printf '  engine floor, 100 containers:   K=16 %s  K=50 %s\n' "$f16" "$f50"
    printf '  orch daemon, all 100 healthy:   %s   rounds: %s\n' "$o" "$(awk '{ printf "%s ", $2 }' "$work/res.apps")"
    printf '  ratio orch / floor:             %s\n' "$(ratio "$o" "$best")"
    [ ! -s "$work/apps.notes" ] || cat "$work/apps.notes"
}

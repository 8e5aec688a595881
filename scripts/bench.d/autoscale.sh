# shellcheck shell=bash disable=SC2154 # work, orch, daemon_pid: globals of bench.d/common.sh
# scripts/bench autoscale [ROUNDS] [MAX]: the autoscaler's reaction at the default 5 s sync. One
# service (orch-demo:1, cpus 0.25, cpu target 20 %, min 1, max MAX (default 4)) under `orch
# daemon`; `hey` burns CPU on its one instance (GET /burn?ms=50, 8 connections: that instance at
# its limit, 5 times the target); times from the load's start to the first new instance healthy
# and to MAX healthy instances. Then the load stops, the count goes back to 1 (scale_down_delay
# 10s) and the next round starts. Sourced by scripts/bench after bench.d/common.sh.

bench_autoscale() {
    local rounds=${1:-1} max=${2:-4} app spec ep t0 t_first t_final r
    [[ $rounds =~ ^[1-9][0-9]*$ && $max =~ ^[2-9][0-9]*$ ]] || usage
    bench_prepare
    need_command hey hey
    app=obench-hpa
    orch_apps+=("$app")
    spec=$work/autoscale.yaml
    cat >"$spec" <<YAML
app: $app
services:
  web:
    image: orch-demo:1
    replicas: 1
    ports: [{name: http, container: 8080}]
    health: {http: /healthz, interval: 500ms, timeout: 500ms, retries: 2}
    update: {stop_grace: 1s}
    resources: {cpus: 0.25}
    autoscale: {min: 1, max: $max, cpu: 20, scale_down_delay: 10s}
YAML
    daemon_start
    orch_cmd apply "$spec" --wait --timeout 60s >/dev/null 2>&1 || bench_fail daemon.log "apply failed"
    orch_log "autoscale: sync 5s (the daemon's default), target cpu 20 % of 0.25 core, max $max"
    for r in $(seq 1 "$rounds"); do
        poll_count 90 1 orch_healthy "$app/web" >/dev/null ||
            bench_fail daemon.log "no healthy instance before round $r"
        poll_count 90 1 desired_is 1 >/dev/null || bench_fail daemon.log "not back at 1"
        ep=$(orch_cmd status "$app/web" -o json | jq -r '[.instances[] | select(.health == "healthy")][0].endpoints.http')
        curl -sf "http://$ep/burn?ms=1" >/dev/null ||
            bench_fail daemon.log "orch-demo:1 has no /burn: run ORCH_SETUP_SKIP=\"packages engine\" ./scripts/setup"
        sleep 11 # two syncs: the idle instance has its CPU samples, the load is what crosses
        t0=$(now)
        hey -z 60s -c 8 "http://$ep/burn?ms=50" >"$work/hey.$r.log" 2>&1 &
        local hey_pid=$!
        cleanup_pids+=("$hey_pid")
        t_first=$(poll_count 60 2 orch_healthy "$app/web") || t_first=""
        t_final=$(poll_count 60 "$max" orch_healthy "$app/web") || t_final=""
        kill "$hey_pid" 2>/dev/null || true
        wait "$hey_pid" 2>/dev/null || true
        echo "$r ${t_first:+$(elapsed "$t0" "$t_first")} ${t_final:+$(elapsed "$t0" "$t_final")}" >>"$work/res"
        printf 'round %d: first new instance healthy %ss, %d healthy %ss after the load started\n' \
            "$r" "${t_first:+$(elapsed "$t0" "$t_first")}" "$max" "${t_final:+$(elapsed "$t0" "$t_final")}"
        # back to 1 (scale_down_delay 10s) before the next round
        poll_count 60 1 desired_is 1 >/dev/null || bench_fail daemon.log "no scale-down after the load"
    done
    printf 'median: first new instance healthy %ss, %d healthy %ss (Kubernetes defaults: first reaction 15-75 s)\n' \
        "$(awk '{ print $2 }' "$work/res" | grep -v '^$' | median)" "$max" \
        "$(awk '{ print $3 }' "$work/res" | grep -v '^$' | median)"
    grep 'autoscale:' "$work/daemon.log" | tail -n 8 >&2 || true
}

# 1 when the service's desired count is $1, else 0 (for poll_count).
desired_is() {
    local d
    d=$(orch_cmd status obench-hpa/web -o json | jq '.replicas.desired')
    [ "$d" = "$1" ] && echo 1 || echo 0
}

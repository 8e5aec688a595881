# shellcheck shell=bash disable=SC2154 # work, orch, daemon_pid: globals of bench.d/common.sh
# scripts/bench daemon-idle [SECONDS] [none|http]: what `orch daemon` costs at rest with 100
# services of one instance each (10 apps x 10 services): RSS and CPU from /proc over an idle
# window, with dockerd's CPU over the same window for reference. Sourced by scripts/bench after
# bench.d/common.sh.

proc_ticks() {
    # utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the ")" of comm
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
proc_status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_pct() { awk -v a="$1" -v b="$2" -v hz="$3" -v s="$4" 'BEGIN { printf "%.2f", (b - a) / hz / s * 100 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# Services of the idle apps that are converged: as many running and healthy as desired.
idle_converged() {
    orch_cmd get -o json | jq '[.services[] | select(.app | startswith("obench-idle"))
        | select(.replicas.desired == 1 and .replicas.running == 1 and .replicas.healthy == 1)] | length'
}

idle_container_ids() {
    local app
    for app in "${orch_apps[@]}"; do
        docker ps -q --no-trunc --filter "label=orch.app=$app" --filter status=running
    done | sort
}

bench_daemon_idle() {
    local secs=${1:-60} probe=${2:-none}
    [[ $secs =~ ^[0-9]+$ && $secs -ge 10 && $secs -le 600 ]] || orch_die "SECONDS must be 10..600"
    [[ $probe == none || $probe == http ]] || orch_die "the probe must be none or http"
    bench_prepare
    local napps=10 nsvc=10 total=100 a s
    for a in $(seq 0 $((napps - 1))); do
        orch_apps+=("obench-idle$a")
        {
            echo "app: obench-idle$a"
            echo "services:"
            for s in $(seq 0 $((nsvc - 1))); do
                echo "  s$s:"
                echo "    image: orch-demo:1"
                echo "    update: {stop_grace: 1s}"
                if [ "$probe" = http ]; then
                    echo "    ports: [{name: http, container: 8080}]"
                    echo "    health: {http: /healthz, interval: 1s, timeout: 1s, retries: 3}"
                fi
            done
        } >"$work/idle$a.yaml"
    done

    daemon_start
    sleep 1
    local pid=$daemon_pid rss_empty t0 t1
    rss_empty=$(proc_status_kb "$pid" VmRSS)
    t0=$(now)
    for a in $(seq 0 $((napps - 1))); do
        orch_cmd apply "$work/idle$a.yaml" >>"$work/apply.log" 2>&1 ||
            bench_fail apply.log "orch apply of obench-idle$a failed"
    done
    t1=$(poll_count 600 "$total" idle_converged) ||
        bench_fail daemon.log "not $total services converged within 600 s ($(idle_converged) were)"
    orch_log "$total services converged in $(elapsed "$t0" "$t1") s; settling 5 s"
    sleep 5

    local hz dpid cpid ids0 ids1 others0 others1 lines
    hz=$(getconf CLK_TCK)
    dpid=$(pgrep -xo dockerd) || orch_die "no dockerd process to measure"
    cpid=$(pgrep -xo containerd || true)
    ids0=$(idle_container_ids)
    [ "$(echo "$ids0" | wc -l)" -eq "$total" ] || orch_die "expected $total running instances"
    others0=$(other_containers)
    lines=$(wc -l <"$work/daemon.log")

    local o0 o1 d0 d1 c0=0 c1=0 w0 w1 rss rss_max=0
    o0=$(proc_ticks "$pid")
    d0=$(proc_ticks "$dpid")
    [ -z "$cpid" ] || c0=$(proc_ticks "$cpid")
    w0=$(now)
    orch_log "measuring $secs s of idle"
    for _ in $(seq 1 "$secs"); do
        sleep 1
        rss=$(proc_status_kb "$pid" VmRSS 2>/dev/null || true)
        [ -n "$rss" ] || bench_fail daemon.log "orch daemon died during the window"
        [ "$rss" -le "$rss_max" ] || rss_max=$rss
    done
    o1=$(proc_ticks "$pid" 2>/dev/null) || o1=""
    d1=$(proc_ticks "$dpid" 2>/dev/null) || d1=""
    [ -z "$cpid" ] || c1=$(proc_ticks "$cpid" 2>/dev/null) || c1=0
    w1=$(now)
    [ -n "$o1" ] || bench_fail daemon.log "orch daemon died during the window"
    # someone else's test may restart the shared engine: then dockerd's numbers mean nothing
    if [ -z "$d1" ] || [ "$(pgrep -xo dockerd)" != "$dpid" ] || ! docker_answers 5; then
        orch_die "dockerd (pid $dpid) stopped or restarted during the window (another user of this engine?); run again"
    fi
    rss=$(proc_status_kb "$pid" VmRSS)
    ids1=$(idle_container_ids)
    others1=$(other_containers)

    local win replaced
    win=$(elapsed "$w0" "$w1")
    replaced=$(comm -23 <(echo "$ids0") <(echo "$ids1") | wc -l)
    printf 'daemon-idle: orch daemon, %d services x 1 instance (%d apps x %d services), probe: %s\n' \
        "$total" "$napps" "$nsvc" "$([ "$probe" = http ] && echo 'http every 1s' || echo none)"
    printf '  converge after apply of the %d apps:   %s s\n' "$napps" "$(elapsed "$t0" "$t1")"
    printf '  idle window:                          %s s (after 5 s settle)\n' "$win"
    printf '  orch daemon CPU:                      %s%% (%d ticks of 1/%d s)\n' \
        "$(cpu_pct "$o0" "$o1" "$hz" "$win")" "$((o1 - o0))" "$hz"
    printf '  orch daemon RSS:                      %s at end, %s max in window, %s peak (VmHWM)\n' \
        "$(mib "$rss")" "$(mib "$rss_max")" "$(mib "$(proc_status_kb "$pid" VmHWM)")"
    printf '  orch daemon RSS with no service:      %s\n' "$(mib "$rss_empty")"
    printf '  orch daemon log lines in window:      %d\n' "$(($(wc -l <"$work/daemon.log") - lines))"
    printf '  instances replaced in window:         %d\n' "$replaced"
    printf '  dockerd CPU (reference):              %s%%\n' "$(cpu_pct "$d0" "$d1" "$hz" "$win")"
    [ -z "$cpid" ] || printf '  containerd CPU (reference):           %s%%\n' "$(cpu_pct "$c0" "$c1" "$hz" "$win")"
    printf '  other containers on the engine:       %d at start, %d at end of the window\n' \
        "$others0" "$others1"
}

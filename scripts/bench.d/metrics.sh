# shellcheck shell=bash disable=SC2154 # BENCH_BUILD: a global of scripts/bench
# scripts/bench metrics [N] [SECONDS] [INTERVAL]: what collecting the autoscaler's CPU metrics
# costs. Starts N (default 100) orch-demo:1 containers (label orch.bench=metrics, ports on
# 127.0.0.1), then collects the CPU counter of every one of them every INTERVAL (default 5) s
# with each collector of controller/autoscale (the driver autoscale_metrics_bench):
#   stats   GET /containers/ID/stats?stream=false&one-shot=true, all in parallel on the client
#   cgroup  the container's cgroup file (v2 cpu.stat or v1 cpuacct.usage), read directly
#   idle    nothing: the baseline of the same processes with the same containers
# for SECONDS (default 60) each, in three interleaved blocks so a change in the machine's
# background load hits every collector alike. Reports the CPU of the collector process, of
# dockerd, and of containerd with its shims (utime+stime deltas from /proc), in % of one core,
# with the idle baseline subtracted; then, as a cross-check less exposed to other work on a
# shared dockerd, the cost of one round from rounds run back to back (10 s stats, 5 s cgroup).
# About SECONDS x 2.5 + 1 minute in all. The containers are removed at the end, also on failure.
# Sourced by scripts/bench after bench.d/common.sh.

metrics_label=orch.bench=metrics

# Also after the engine went away mid-run (another user restarting it): wait for it a while.
metrics_cleanup() {
    local deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1 || [ "$SECONDS" -ge "$deadline" ]; do
        sleep 1
    done
    remove_label "$metrics_label" || orch_warn "metrics: could not remove the containers labelled $metrics_label"
}

# utime + stime of the processes given, in clock ticks (a process that is gone counts 0).
metrics_ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}

# pct TICKS HZ SECONDS: % of one core.
metrics_pct() { awk -v t="$1" -v hz="$2" -v s="$3" 'BEGIN { printf "%.2f", t / hz / s * 100 }'; }

# The engine's processes: dockerd, containerd and every containerd shim.
metrics_pids() {
    m_dockerd=$(pidof dockerd) || orch_die "no dockerd process on this machine (a remote engine?)"
    m_containerd=$(pidof containerd || true)
    # shellcheck disable=SC2207 # pids are words
    m_shims=($(pgrep -f containerd-shim || true))
    # The shims of our own containers: nobody else asks the engine about them, so their CPU is
    # what our collection costs there, free of the noise of others' work on a shared engine.
    local ids pid args id
    ids=$(docker ps -q --no-trunc --filter "label=$metrics_label")
    m_ourshims=()
    while read -r pid args; do
        id=${args##*-id }
        id=${id%% *}
        if grep -qx "$id" <<<"$ids"; then m_ourshims+=("$pid"); fi
    done < <(pgrep -a -f containerd-shim)
}

# Another user of this machine may restart the engine (a test of engine restarts does): wait for
# it, start our containers again and wait until all N run. Bounded.
metrics_recover() {
    local n=$1 deadline=$((SECONDS + 120))
    until docker info >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || orch_die "metrics: the engine did not come back in 120 s"
        sleep 1
    done
    docker ps -aq --filter "label=$metrics_label" --filter status=exited |
        xargs -r -n 50 docker start >/dev/null 2>&1 || true
    # not wait_running: the engine may go away again meanwhile, and that must not flood the log
    until [ "$(docker ps -q --filter "label=$metrics_label" --filter status=running 2>/dev/null | wc -l)" -ge "$n" ]; do
        [ "$SECONDS" -lt "$deadline" ] || orch_die "metrics: our $n containers did not run again within 120 s"
        sleep 0.5
    done
    sleep 3
    metrics_pids
}

# metrics_run COLLECTOR INTERVAL_MS DURATION_MS N: one run of the driver; sets m_out, m_dt,
# m_cst and m_ot (ticks of dockerd, of containerd + all shims, of our containers' shims during
# it) and m_wall (seconds). Fails when the engine restarted meanwhile (its pid changed, the
# driver could not list the N containers, or more than a tenth of the reads failed).
metrics_run() {
    local c=$1 iv=$2 dur=$3 n=$4 d0 cs0 o0 t0 t1 pid=$m_dockerd
    d0=$(metrics_ticks "$m_dockerd")
    # shellcheck disable=SC2086 # m_containerd may be empty
    cs0=$(metrics_ticks $m_containerd "${m_shims[@]}")
    o0=$(metrics_ticks "${m_ourshims[@]}")
    t0=$(now)
    m_out=$("$m_driver" "$c" "$metrics_label" "$iv" "$dur" 2>"$BENCH_BUILD/metrics-$c.err") ||
        orch_warn "metrics: the $c collector reported failures: $(head -n 3 "$BENCH_BUILD/metrics-$c.err")"
    t1=$(now)
    m_dt=$(($(metrics_ticks "$m_dockerd") - d0))
    # shellcheck disable=SC2086
    m_cst=$(($(metrics_ticks $m_containerd "${m_shims[@]}") - cs0))
    m_ot=$(($(metrics_ticks "${m_ourshims[@]}") - o0))
    m_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    local nf
    nf=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$m_out")
    # more than a tenth failed: the engine was going down while the dockerd pid still stood
    [[ $m_out == *" containers=$n "* && $(pidof dockerd) == "$pid" && ${nf:-0} -le $((n / 10)) ]]
}

# metrics_run_retry: metrics_run, redone after an engine restart (at most 4 in a benchmark).
metrics_run_retry() {
    until metrics_run "$@"; do
        m_restarts=$((m_restarts + 1))
        [ "$m_restarts" -le 4 ] || orch_die "metrics: the engine restarted $m_restarts times; giving up"
        orch_warn "metrics: the engine restarted during the $1 run; starting the containers again and redoing it"
        metrics_recover "$4"
    done
}

bench_metrics() {
    local n=${1:-100} secs=${2:-60} interval=${3:-5}
    [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 200 ]] || orch_die "N must be 1..200"
    [[ $secs =~ ^[0-9]+$ && $secs -ge 15 && $secs -le 300 ]] || orch_die "SECONDS must be 15..300"
    [[ $interval =~ ^[0-9]+$ && $interval -ge 1 && $interval -le 60 ]] ||
        orch_die "INTERVAL must be 1..60"
    docker image inspect orch-demo:1 >/dev/null 2>&1 || orch_die "no orch-demo:1: run scripts/setup"
    cmake -S . -B "$BENCH_BUILD" >/dev/null
    cmake --build "$BENCH_BUILD" -j2 --target autoscale_metrics_bench >/dev/null
    m_driver=$BENCH_BUILD/controller/autoscale/autoscale_metrics_bench
    m_restarts=0
    trap metrics_cleanup EXIT
    trap 'exit 130' INT TERM

    remove_label "$metrics_label" # an interrupted earlier run
    orch_log "metrics: starting $n orch-demo:1 containers"
    seq 1 "$n" | xargs -P 4 -I{} docker run -d --label "$metrics_label" -p 127.0.0.1::8080 \
        orch-demo:1 >/dev/null
    wait_running "$metrics_label" "$n" >/dev/null
    sleep 3

    local hz
    hz=$(getconf CLK_TCK)
    metrics_pids
    orch_log "metrics: dockerd $m_dockerd, containerd ${m_containerd:-none}, ${#m_shims[@]} shims (${#m_ourshims[@]} of ours); $(other_containers) other containers run on this engine"

    local blocks=3 block=$((secs / 3)) idle_block=$((secs / 6)) b c dur nf
    [ "$idle_block" -ge 5 ] || idle_block=5
    declare -A self_ms=() d_ticks=() cs_ticks=() o_ticks=() wall=() rounds_ms=() rounds_max=() failed=()
    for c in idle stats cgroup; do
        self_ms[$c]=0 d_ticks[$c]=0 cs_ticks[$c]=0 o_ticks[$c]=0 wall[$c]=0 rounds_ms[$c]="" rounds_max[$c]=0 failed[$c]=0
    done
    for b in $(seq 1 "$blocks"); do
        for c in stats cgroup idle; do
            dur=$block
            [ "$c" = idle ] && dur=$idle_block
            metrics_run_retry "${c/idle/none}" $((interval * 1000)) $((dur * 1000)) "$n"
            d_ticks[$c]=$((d_ticks[$c] + m_dt))
            cs_ticks[$c]=$((cs_ticks[$c] + m_cst))
            o_ticks[$c]=$((o_ticks[$c] + m_ot))
            wall[$c]=$(awk -v w="${wall[$c]}" -v x="$m_wall" 'BEGIN { printf "%.3f", w + x }')
            self_ms[$c]=$(awk -v s="${self_ms[$c]}" -v o="$m_out" 'BEGIN { match(o, /self_cpu_ms=[0-9.]+/); printf "%.1f", s + substr(o, RSTART + 12, RLENGTH - 12) }')
            rounds_ms[$c]+=" $(sed -n 's/.*round_ms_mean=\([0-9.]*\).*/\1/p' <<<"$m_out")"
            rounds_max[$c]=$(awk -v m="${rounds_max[$c]}" -v o="$m_out" 'BEGIN { match(o, /round_ms_max=[0-9.]+/); v = substr(o, RSTART + 13, RLENGTH - 13) + 0; print (v > m) ? v : m }')
            nf=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$m_out")
            failed[$c]=$((failed[$c] + ${nf:-0}))
            echo "# block $b $c (${dur}s): $m_out"
        done
    done

    local idle_d idle_cs idle_self
    idle_d=$(metrics_pct "${d_ticks[idle]}" "$hz" "${wall[idle]}")
    idle_cs=$(metrics_pct "${cs_ticks[idle]}" "$hz" "${wall[idle]}")
    idle_self=$(awk -v ms="${self_ms[idle]}" -v w="${wall[idle]}" 'BEGIN { printf "%.2f", ms / 10 / w }')
    echo
    echo "$n containers, a collection every ${interval}s; % of one core ($(nproc) cores here)"
    printf '%-8s %8s %8s %12s %10s %10s %14s %16s %14s %7s\n' collector seconds orch dockerd \
        containerd+ 'our shims' 'orch+dockerd' 'minus idle' 'all minus idle' 'round ms mean/max'
    for c in idle stats cgroup; do
        local self d cs os od od_net all_net rmean
        self=$(awk -v ms="${self_ms[$c]}" -v w="${wall[$c]}" 'BEGIN { printf "%.2f", ms / 10 / w }')
        d=$(metrics_pct "${d_ticks[$c]}" "$hz" "${wall[$c]}")
        cs=$(metrics_pct "${cs_ticks[$c]}" "$hz" "${wall[$c]}")
        os=$(metrics_pct "${o_ticks[$c]}" "$hz" "${wall[$c]}")
        od=$(awk -v a="$self" -v b="$d" 'BEGIN { printf "%.2f", a + b }')
        od_net=$(awk -v a="$od" -v i="$idle_self" -v j="$idle_d" 'BEGIN { printf "%.2f", a - i - j }')
        all_net=$(awk -v a="$od_net" -v c="$cs" -v k="$idle_cs" 'BEGIN { printf "%.2f", a + c - k }')
        rmean=$(tr ' ' '\n' <<<"${rounds_ms[$c]}" | awk 'NF { s += $1; n++ } END { printf "%.1f", n ? s / n : 0 }')
        printf '%-8s %8.0f %8s %12s %10s %10s %14s %16s %14s %s\n' "$c" "${wall[$c]}" "$self" "$d" "$cs" \
            "$os" "$od" "$od_net" "$all_net" "$rmean/${rounds_max[$c]} (failed ${failed[$c]})"
    done
    echo "target: orch + dockerd <= 2 % of a core at 100 instances and a 5 s sync"
    [ "$m_restarts" = 0 ] || echo "(the engine restarted $m_restarts times; the runs it interrupted were redone)"

    # The cross-check: rounds back to back for a few seconds concentrate the cost well above the
    # noise of other work on dockerd; the cost of one round, over the idle rate, gives the share
    # of a core at one round per INTERVAL.
    echo
    echo "back-to-back rounds (the idle rate above subtracted), cost of one round and at ${interval}s:"
    local bsecs rounds self
    for c in stats cgroup; do
        bsecs=10
        [ "$c" = cgroup ] && bsecs=5
        metrics_run_retry "$c" 0 $((bsecs * 1000)) "$n"
        rounds=$(sed -n 's/.* rounds=\([0-9]*\).*/\1/p' <<<"$m_out")
        self=$(sed -n 's/.*self_cpu_ms=\([0-9.]*\).*/\1/p' <<<"$m_out")
        echo "# burst $c: $m_out"
        awk -v c="$c" -v r="$rounds" -v self="$self" -v dt="$m_dt" -v cst="$m_cst" -v ot="$m_ot" -v hz="$hz" \
            -v w="$m_wall" -v idd="${d_ticks[idle]}" -v ics="${cs_ticks[idle]}" -v ios="${o_ticks[idle]}" \
            -v iw="${wall[idle]}" -v iv="$interval" -v n="$n" 'BEGIN {
            d_ms = (dt / hz - idd / hz / iw * w) * 1000
            cs_ms = (cst / hz - ics / hz / iw * w) * 1000
            os_ms = (ot / hz - ios / hz / iw * w) * 1000
            if (r < 1) r = 1
            printf "%-8s %d rounds of %d in %.1fs: per round orch %.1f ms, dockerd %.1f ms, containerd+shims %.1f ms (our shims %.1f ms)\n", c, r, n, w, self / r, d_ms / r, cs_ms / r, os_ms / r
            printf "%-8s at one round per %ds: orch+dockerd %.2f %%, everything %.2f %% of a core\n", c, iv, (self + d_ms) / r / iv / 10, (self + d_ms + cs_ms) / r / iv / 10
        }'
    done
}

# shellcheck shell=bash disable=SC2154 # work, orch, floor: globals of bench.d/common.sh
# scripts/bench converge N [ROUNDS]: from nothing to N running instances of orch-demo:1 (one
# published port, a bridge network of their own with the service alias), in the same run:
#   floor        engine_floor (tests/bench/): a minimal Engine API client that creates and starts
#                the containers as orch's create request describes them, from K threads on
#                kept-alive connections; every K of a small sweep runs each round, and the K with
#                the best median is the engine's limit
#   docker run   N parallel `docker run -d` after one `docker network create`
#   compose      `docker-compose up -d --scale web=N` (Debian's docker-compose 1.29)
#   orch         `orch apply` (embedded): "N running" and "apply returned" separately
# "N running" is the engine's own time stamp of the Nth container start event (a `docker events`
# stream, not a polling loop that would load the engine under test); t0 is taken just before the
# tool is launched. Each tool runs ROUNDS times, interleaved, everything removed between runs; a
# tool that fails or does not reach N within the time limit is a result of its round (how many
# it started, in how long) and leaves its median out, never ends the benchmark.
# Sourced by scripts/bench after bench.d/common.sh.

# Starts a `docker events` stream of container start events carrying label $1 into file $2;
# sets the global ev_pid. Its start is not timed: it is given 0.5 s to subscribe.
watch_starts() {
    : >"$2"
    docker events --filter type=container --filter event=start --filter "label=$1" \
        --format '{{.TimeNano}}' >"$2" 2>/dev/null &
    ev_pid=$!
    cleanup_pids+=("$ev_pid")
    sleep 0.5
}

watch_stop() {
    [ -n "${ev_pid:-}" ] || return 0
    kill "$ev_pid" 2>/dev/null || true
    wait "$ev_pid" 2>/dev/null || true
    ev_pid=""
    cleanup_pids=()
}

# Waits until file $1 holds N start events or LIMIT seconds passed, or (when $4 is a pid) that
# process ended with fewer, after a short grace. Prints "time count": the engine's time stamp
# (seconds) of the Nth start, or of the last one seen and how many.
wait_starts() {
    local file=$1 n=$2 limit=$3 pid=${4:-} deadline c gone=0
    deadline=$((SECONDS + limit))
    while :; do
        c=$(wc -l <"$file")
        [ "$c" -lt "$n" ] || break
        [ "$SECONDS" -lt "$deadline" ] || break
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            # the tool is done: the last events may still be on their way
            gone=$((gone + 1))
            [ "$gone" -lt 100 ] || break
        fi
        sleep 0.02
    done
    c=$(wc -l <"$file")
    if [ "$c" -eq 0 ]; then
        echo "- 0"
        return 0
    fi
    sort -n "$file" | awk -v n="$n" 'NR <= n { t = $1; c = NR } END { printf "%.3f %d\n", t / 1e9, c }'
}

# The result of one timed run appended to $work/res.TOOL: "round seconds count status", status
# ok or what went wrong; seconds is the time to N (ok) or to the last start seen.
record() {
    local tool=$1 round=$2 t0=$3 tn=$4 count=$5 n=$6 status=$7
    local s="-"
    [ "$tn" = "-" ] || s=$(elapsed "$t0" "$tn")
    if [ "$status" = ok ] && [ "$count" -lt "$n" ]; then status="reached $count of $n"; fi
    echo "$round $s $count ${status// /_}" >>"$work/res.$tool"
}

# Median of the ok rounds of a tool ("-" when none).
tool_median() {
    [ -s "$work/res.$1" ] || { echo "-"; return 0; }
    awk '$4 == "ok" { print $2 }' "$work/res.$1" | median
}

# "ok ok reached_7_of_10": what each round of a tool came to, for the results.
tool_rounds() {
    [ -s "$work/res.$1" ] || { echo "-"; return 0; }
    awk '{ gsub(/_/, " ", $4); printf "%s%s", (NR > 1 ? " " : ""), ($4 == "ok" ? $2 : $2 " (" $4 ")") }' "$work/res.$1"
}

# Removes the containers carrying label $1 (and network $2 if given) with the floor tool,
# concurrently, then lets the engine finish its own clean-up before the next timed run.
clean_label() {
    local args=(--remove --label "$1" --workers 16)
    [ -z "${2:-}" ] || args+=(--network "$2")
    timeout 120 "$floor" "${args[@]}" >/dev/null 2>>"$work/clean.log" ||
        orch_warn "removing the containers of $1 failed (see above); the next run may be slower"
    sleep 2
}

# One timed run of each tool (round $1); the globals n, limit, ks are bench_converge's.
converge_floor() {
    local r=$1 k t0 tn c rc st
    # each K of the sweep; labels like orch's four (app, service, revision, state)
    for k in "${ks[@]}"; do
        watch_starts bench=orch-floor "$work/ev"
        t0=$(now)
        rc=0
        timeout "$limit" "$floor" --count "$n" --workers "$k" --network orch-floor-net \
            --create-network --alias web --name-prefix bench-web --label bench=orch-floor \
            --label orch-floor.service=web --label orch-floor.revision=1 \
            --label "orch-floor.state=$(basename "$work")" \
            >>"$work/floor.out" 2>>"$work/floor.log" || rc=$?
        read -r tn c <<<"$(wait_starts "$work/ev" "$n" 10)"
        watch_stop
        st=ok
        [ "$rc" -eq 0 ] || st="engine_floor exited $rc"
        record "floor$k" "$r" "$t0" "$tn" "$c" "$n" "$st"
        clean_label bench=orch-floor orch-floor-net
    done
}

# N parallel docker run -d, after one docker network create
converge_dockerrun() {
    local r=$1 t0 tn c rc st
    watch_starts bench=orch-dockerrun "$work/ev"
    t0=$(now)
    rc=0
    {
        docker network create --label bench=orch-dockerrun orch-dockerrun-net >/dev/null &&
            seq 1 "$n" | timeout "$limit" xargs -P "$n" -I{} docker run -d \
                --label bench=orch-dockerrun --label orch-dockerrun.service=web \
                --label orch-dockerrun.revision=1 -p 127.0.0.1::8080 \
                --network orch-dockerrun-net --network-alias web --stop-timeout 1 \
                orch-demo:1 >/dev/null
    } 2>>"$work/dockerrun.log" || rc=$?
    read -r tn c <<<"$(wait_starts "$work/ev" "$n" 10)"
    watch_stop
    st=ok
    [ "$rc" -eq 0 ] || st="docker run failed ($rc)"
    record dockerrun "$r" "$t0" "$tn" "$c" "$n" "$st"
    clean_label bench=orch-dockerrun orch-dockerrun-net
}

# docker-compose up -d --scale
converge_compose() {
    local r=$1 t0 tn c rc st
    watch_starts com.docker.compose.project=benchc "$work/ev"
    t0=$(now)
    rc=0
    (cd "$work" && timeout "$limit" docker-compose -p benchc up -d --scale web="$n") \
        >>"$work/compose.log" 2>&1 || rc=$?
    read -r tn c <<<"$(wait_starts "$work/ev" "$n" 10)"
    watch_stop
    st=ok
    [ "$rc" -eq 0 ] || st="docker-compose exited $rc"
    record compose "$r" "$t0" "$tn" "$c" "$n" "$st"
    clean_label com.docker.compose.project=benchc benchc_default
}

# orch apply (embedded): N running and apply returned
converge_orch() {
    local r=$1 t0 tn c rc st pid tx
    rm -rf "$work/state"
    watch_starts orch.app=bench "$work/ev"
    t0=$(now)
    timeout "$limit" "$orch" --state "$work/state" apply "$work/spec.yaml" \
        >>"$work/orch.log" 2>&1 &
    pid=$!
    read -r tn c <<<"$(wait_starts "$work/ev" "$n" "$limit" "$pid")"
    rc=0
    wait "$pid" || rc=$?
    tx=$(now)
    watch_stop
    st=ok
    [ "$rc" -eq 0 ] || st="orch apply exited $rc"
    record orch "$r" "$t0" "$tn" "$c" "$n" "$st"
    # "apply returned" counts only when the apply succeeded with N running
    if [ "$st" = ok ] && [ "$c" -ge "$n" ]; then
        record orchret "$r" "$t0" "$tx" "$n" "$n" ok
    else
        record orchret "$r" "$t0" "$tx" 0 "$n" "$st"
    fi
    clean_label orch.app=bench orch-bench
}

# "2.143s" or "-": round $2 of tool $1
round_of() { awk -v r="$2" '$1 == r { print $2 "s" }' "$work/res.$1"; }

bench_converge() {
    local n=$1 rounds=${2:-3}
    [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 200 ]] || orch_die "N must be 1..200"
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 10 ]] || orch_die "ROUNDS must be 1..10"
    bench_prepare
    need_command docker-compose docker-compose
    local limit=$((60 + 3 * n)) ks=() k
    # the sweep of floor workers: ORCH_BENCH_FLOOR_K, each at most N, without repeats
    for k in ${ORCH_BENCH_FLOOR_K:-1 4 16 50}; do
        [[ $k =~ ^[0-9]+$ && $k -ge 1 ]] || orch_die "ORCH_BENCH_FLOOR_K: '$k' is not a count"
        [ "$k" -le "$n" ] || k=$n
        [[ " ${ks[*]} " == *" $k "* ]] || ks+=("$k")
    done
    orch_apps+=(bench)
    cleanup_labels+=(bench=orch-floor bench=orch-dockerrun com.docker.compose.project=benchc)
    cleanup_networks+=(orch-floor-net orch-dockerrun-net benchc_default)

    cat >"$work/spec.yaml" <<YAML
app: bench
services:
  web:
    image: orch-demo:1
    replicas: $n
    ports: [{name: http, container: 8080}]
    update: {stop_grace: 1s}
YAML
    cat >"$work/docker-compose.yml" <<YAML
version: "2.4"
services:
  web:
    image: orch-demo:1
    ports: ["127.0.0.1::8080"]
    stop_grace_period: 1s
YAML
    local others0 r
    others0=$(other_containers)
    local tools=(floor dockerrun compose orch) i t
    for r in $(seq 1 "$rounds"); do
        # the order turns each round, so that no tool always follows the same one
        for i in "${!tools[@]}"; do
            t=${tools[$(((i + r - 1) % ${#tools[@]}))]}
            "converge_$t" "$r"
        done
        orch_log "round $r/$rounds: floor $(for k in "${ks[@]}"; do printf 'K=%s %s ' "$k" "$(round_of "floor$k" "$r")"; done)| docker run $(round_of dockerrun "$r") | compose $(round_of compose "$r") | orch $(round_of orch "$r"), returned $(round_of orchret "$r")"
    done

    # the floor: the K whose median is the lowest
    local best="" bk="" m
    for k in "${ks[@]}"; do
        m=$(tool_median "floor$k")
        [ "$m" != "-" ] || continue
        if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$m
            bk=$k
        fi
    done
    local dr co o x
    dr=$(tool_median dockerrun)
    co=$(tool_median compose)
    o=$(tool_median orch)
    x=$(tool_median orchret)
    printf 'converge N=%d: from nothing to N running, median of %d rounds, interleaved (seconds)\n' "$n" "$rounds"
    printf '  engine floor (engine_floor, best K):       %s   K=%s\n' "${best:--}" "${bk:--}"
    for k in "${ks[@]}"; do
        printf '    K=%-3s %-8s rounds: %s\n' "$k" "$(tool_median "floor$k")" "$(tool_rounds "floor$k")"
    done
    printf '  parallel docker run -d:                    %-8s rounds: %s\n' "$dr" "$(tool_rounds dockerrun)"
    printf '  docker-compose up -d --scale:              %-8s rounds: %s\n' "$co" "$(tool_rounds compose)"
    printf '  orch apply, N running:                     %-8s rounds: %s\n' "$o" "$(tool_rounds orch)"
    printf '  orch apply, command returned:              %-8s rounds: %s\n' "$x" "$(tool_rounds orchret)"
    printf '  ratios           N running   apply returned\n'
    printf '    orch / floor      %-8s    %s\n' "$(ratio "$o" "${best:--}")" "$(ratio "$x" "${best:--}")"
    printf '    orch / compose    %-8s    %s\n' "$(ratio "$o" "$co")" "$(ratio "$x" "$co")"
    printf '    orch / docker run %-8s    %s\n' "$(ratio "$o" "$dr")" "$(ratio "$x" "$dr")"
    printf '    compose / floor   %s\n' "$(ratio "$co" "${best:--}")"
    printf '  apply returned - N running (median):       %s\n' \
        "$(paste -d' ' <(awk '{ print $2, $4 }' "$work/res.orch") <(awk '{ print $2, $4 }' "$work/res.orchret") |
            awk '$2 == "ok" && $4 == "ok" { printf "%.3f\n", $3 - $1 }' | median)"
    printf '  floor detail (engine_floor, per run): %s\n' \
        "$(awk -v k="count=$n workers=$bk " 'index($0, k) == 1 { sub(/^count=[0-9]+ workers=[0-9]+ /, ""); print; exit }' "$work/floor.out")"
    printf '  other containers on the engine: %d at start, %d at end\n' "$others0" "$(other_containers)"
}

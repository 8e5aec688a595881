# shellcheck shell=bash disable=SC2154 # work, orch, daemon_pid: globals of bench.d/common.sh
# scripts/bench rolling [N] [ROUNDS] [AT_ONCE] [ORDER]: a rolling update of N instances
# orch-demo:1 -> orch-demo:2, AT_ONCE at a time, ORDER start-first (new first: orch max_surge
# AT_ONCE, max_unavailable 0) or stop-first (old first: max_surge 0, max_unavailable AT_ONCE),
# gated on a 1 s health probe: embedded `orch apply --image` vs `docker service update`, each
# timed while a background sampler counts healthy instances. A peer that fails, pauses, rolls
# back or stalls is a result of its round (its time, how many instances it updated, its state):
# the other's figures are still printed. `scripts/bench compass` runs the reference cases.
# Sourced by scripts/bench after bench.d/common.sh.

# One sample of APP/SERVICE as orch sees it (`orch status` probes every instance itself):
# "healthy new-healthy old-running running", new being revision $2.
orch_roll_sample() {
    orch_cmd status "$1" -o json | jq -r --argjson rev "$2" '
        [.instances[] | select(.state == "running")] as $r
        | [($r | map(select(.health == "healthy")) | length),
           ($r | map(select(.health == "healthy" and .revision == $rev)) | length),
           ($r | map(select(.revision != $rev)) | length),
           ($r | length)] | @tsv'
}

# The same for the running task containers of Swarm service $1 as the engine's health checks
# see them, new being image ID $2 (docker ps --no-trunc shows the ID the task names).
swarm_roll_sample() {
    docker ps --no-trunc --filter "label=com.docker.swarm.service.name=$1" --filter status=running \
        --format '{{.Image}}|{{.Status}}' |
        awk -F'|' -v img="$2" '
            { run++; h = ($2 ~ /\(healthy\)/); healthy += h
              if ($1 == img) newh += h; else old++ }
            END { printf "%d\t%d\t%d\t%d\n", healthy, newh, old, run }'
}

# From a sample file, the update's start t0 and end t1 and size N: "min-healthy max-running
# seconds-until-all-new (or -) samples mean-interval new-healthy-at-end old-running-at-end".
roll_summary() {
    awk -v t0="$2" -v t1="$3" -v n="$4" '
        { if (NR == 1 || $2 < minh) minh = $2
          if ($5 > maxr) maxr = $5
          if (done == "" && $1 >= t0 && $3 >= n && $4 == 0) done = sprintf("%.3f", $1 - t0)
          if ($1 <= t1 + 0.3) { endnew = $3; endold = $4 }
          if (NR == 1) first = $1; last = $1 }
        END { if (NR == 0) { print "- - - 0 - - -"; exit }
              printf "%d %d %s %d %.2f %d %d\n", minh, maxr, (done == "" ? "-" : done), NR,
                     (NR > 1 ? (last - first) / (NR - 1) : 0), endnew, endold }' "$1"
}

# Appends one round's result to $work/res.TOOL: "round status seconds summary...", status ok or
# what went wrong (no spaces), seconds "-" when nothing was timed.
roll_record() {
    local tool=$1 r=$2 status=$3 secs=$4 sum=${5:-"- - - 0 - - -"}
    echo "$r ${status// /_} $secs $sum" >>"$work/res.$tool"
}

# What each round of a tool came to: "9.512" or "31.200 (paused: new 6/10, old 4)".
roll_rounds() {
    awk '{ gsub(/_/, " ", $2)
           if ($2 == "ok") s = $3
           else if ($9 == "-") s = $3 " (" $2 ")"
           else s = $3 " (" $2 ": new " $9 "/" n ", old " $10 ")"
           printf "%s%s", (NR > 1 ? " " : ""), s }' n="$2" "$work/res.$1"
}

# Column $2 of the ok rounds of tool $1, one per line ("-" left out).
roll_col() { awk -v c="$2" '$2 == "ok" && $c != "-" { print $c }' "$work/res.$1"; }

# orch, embedded: apply revision 1, then time the apply of the new image (round $1).
roll_orch() {
    local r=$1 t0 t1 rc c
    rm -rf "$work/state"
    if ! timeout 300 "$orch" --state "$work/state" apply "$work/roll.yaml" >>"$work/orch.log" 2>&1; then
        roll_record orch "$r" "revision 1 not applied" -
        return 0
    fi
    if ! poll_count 120 "$n" orch_healthy "$app/web" >/dev/null; then
        c=$(orch_healthy "$app/web" 2>/dev/null || echo 0)
        roll_record orch "$r" "revision 1: $c of $n healthy after 120 s" -
        timeout 300 "$orch" --state "$work/state" delete --app "$app" >>"$work/orch.log" 2>&1
        return 0
    fi
    sampler_start "$work/orch.samples$r" "$((limit + 60))" orch_roll_sample "$app/web" 2
    sleep 0.5
    t0=$(now)
    rc=0
    timeout "$((limit + 30))" "$orch" --state "$work/state" apply "$work/roll.yaml" \
        --image web=orch-demo:2 --timeout "${limit}s" >>"$work/orch.log" 2>&1 || rc=$?
    t1=$(now)
    sleep 0.5
    sampler_stop
    local st=ok
    case $rc in
    0) ;;
    4 | 124) st="timed out (exit $rc)" ;;
    *) st="exit $rc" ;;
    esac
    roll_record orch "$r" "$st" "$(elapsed "$t0" "$t1")" \
        "$(roll_summary "$work/orch.samples$r" "$t0" "$t1" "$n")"
    timeout 300 "$orch" --state "$work/state" delete --app "$app" >>"$work/orch.log" 2>&1 ||
        orch_warn "orch delete --app $app failed (the EXIT trap retries)"
}

# Swarm: deploy with image 1, then time the service update to image 2 (round $1).
roll_swarm() {
    local r=$1 t0 t1 st c msg
    if ! swarm_deploy "$stack" "$work/stack.yml"; then
        roll_record swarm "$r" "docker stack deploy failed" -
        swarm_remove "$stack"
        return 0
    fi
    if ! poll_count 300 "$n" swarm_healthy "$svc" >/dev/null; then
        c=$(swarm_healthy "$svc")
        roll_record swarm "$r" "image 1: $c of $n healthy after 300 s" -
        swarm_remove "$stack"
        return 0
    fi
    sampler_start "$work/swarm.samples$r" "$((limit + 60))" swarm_roll_sample "$svc" "$id2"
    sleep 0.5
    t0=$(now)
    if ! docker service update --detach --no-resolve-image --image "$id2" \
        --update-parallelism "$at_once" --update-order "$order" --update-delay 0s "$svc" \
        >>"$work/swarm.log" 2>&1; then
        sampler_stop
        roll_record swarm "$r" "docker service update refused" -
        swarm_remove "$stack"
        return 0
    fi
    st=""
    local deadline=$((SECONDS + limit))
    while [ "$SECONDS" -lt "$deadline" ]; do
        st=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$svc" 2>/dev/null)
        case $st in completed | paused | rollback_*) break ;; esac
        sleep 0.2
    done
    t1=$(now)
    sleep 0.5
    sampler_stop
    case $st in
    completed) st=ok ;;
    paused | rollback_*)
        msg=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}' "$svc" 2>/dev/null)
        echo "round $r: swarm update ended '$st': $msg" >>"$work/swarm.notes"
        ;;
    *) st="not completed after ${limit}s (state ${st:-none})" ;;
    esac
    roll_record swarm "$r" "$st" "$(elapsed "$t0" "$t1")" \
        "$(roll_summary "$work/swarm.samples$r" "$t0" "$t1" "$n")"
    swarm_remove "$stack"
}

bench_rolling() {
    # globals for roll_orch and roll_swarm (the EXIT trap needs none of them)
    n=${1:-20}
    local rounds=${2:-3}
    at_once=${3:-1}
    order=${4:-start-first}
    [[ $n =~ ^[0-9]+$ && $n -ge 2 && $n -le 50 ]] || orch_die "N must be 2..50"
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 5 ]] || orch_die "ROUNDS must be 1..5"
    [[ $at_once =~ ^[0-9]+$ && $at_once -ge 1 && $at_once -lt $n ]] ||
        orch_die "AT_ONCE must be 1..N-1"
    local surge unavail
    case $order in
    start-first) surge=$at_once unavail=0 ;;
    stop-first) surge=0 unavail=$at_once ;;
    *) orch_die "ORDER must be start-first or stop-first" ;;
    esac
    bench_prepare
    app=obench-roll stack=obenchroll svc=obenchroll_web
    limit=${ORCH_BENCH_ROLL_LIMIT:-600}
    # `orch status` probes every instance itself: at N=50 a sample every 0.2 s more than doubled
    # orch's own update time on 2 cores (133 s, against 53 s in a run without it), so the period
    # grows with N: N/50 s, at least 0.2 s (ORCH_BENCH_ROLL_SAMPLE overrides it); both peers alike.
    sample_period=${ORCH_BENCH_ROLL_SAMPLE:-$(awk -v n="$n" 'BEGIN { p = n / 50; printf "%.2f", (p < 0.2 ? 0.2 : p) }')}
    [[ $sample_period =~ ^[0-9]+(\.[0-9]+)?$ ]] || orch_die "ORCH_BENCH_ROLL_SAMPLE must be seconds"
    orch_apps+=("$app")
    swarm_begin
    local id1
    id1=$(image_id orch-demo:1)
    id2=$(image_id orch-demo:2)
    [ "$id1" != "$id2" ] ||
        orch_die "orch-demo:1 and orch-demo:2 are the same image: nothing to roll"

    cat >"$work/roll.yaml" <<YAML
app: $app
services:
  web:
    image: orch-demo:1
    replicas: $n
    ports: [{name: http, container: 8080}]
    health: {http: /healthz, interval: 1s, timeout: 1s, retries: 3}
    update: {max_surge: $surge, max_unavailable: $unavail, stop_grace: 1s}
YAML
    swarm_stack_file "$work/stack.yml" "$id1" "$n"

    local r others0
    others0=$(other_containers)
    : >"$work/res.orch"
    : >"$work/res.swarm"
    for r in $(seq 1 "$rounds"); do
        # the order turns each round
        if [ $((r % 2)) = 1 ]; then
            roll_orch "$r"
            roll_swarm "$r"
        else
            roll_swarm "$r"
            roll_orch "$r"
        fi
        orch_log "round $r/$rounds: orch $(awk -v r="$r" '$1 == r { gsub(/_/, " ", $2); print $3 "s " $2 }' "$work/res.orch"), swarm $(awk -v r="$r" '$1 == r { gsub(/_/, " ", $2); print $3 "s " $2 }' "$work/res.swarm")"
    done

    local oc sc od sd
    oc=$(roll_col orch 3 | median)
    sc=$(roll_col swarm 3 | median)
    od=$(roll_col orch 6 | median)
    sd=$(roll_col swarm 6 | median)
    printf 'rolling: %d instances orch-demo:1 -> orch-demo:2, %d at a time, %s, 1 s probe\n' \
        "$n" "$at_once" "$order"
    printf '         median of the completed rounds of %d (seconds); floor = replicas - max_unavailable = %d\n' \
        "$rounds" "$((n - unavail))"
    printf '  orch apply --image (embedded), until it returned:        %-8s rounds: %s\n' \
        "$oc" "$(roll_rounds orch "$n")"
    printf '  orch, until %d new healthy and no old running (sampled):  %s\n' "$n" "$od"
    printf '  docker service update, until UpdateStatus completed:     %-8s rounds: %s\n' \
        "$sc" "$(roll_rounds swarm "$n")"
    printf '  swarm, until %d new healthy and no old running (sampled): %s\n' "$n" "$sd"
    printf '  orch vs swarm, command/update end:                       %s\n' "$(ratio "$oc" "$sc")"
    printf '  orch vs swarm, all new healthy:                          %s\n' "$(ratio "$od" "$sd")"
    printf '  fewest healthy seen, per round:  orch %s   swarm %s\n' \
        "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $4 }' "$work/res.orch")" \
        "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $4 }' "$work/res.swarm")"
    printf '  most running at once, per round: orch %s   swarm %s\n' \
        "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $5 }' "$work/res.orch")" \
        "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $5 }' "$work/res.swarm")"
    printf '  samples every %s s + their run time (count, mean interval s): orch %s   swarm %s\n' \
        "$sample_period" \
        "$(awk '{ printf "%s%s (%s)", (NR > 1 ? " " : ""), $7, $8 }' "$work/res.orch")" \
        "$(awk '{ printf "%s%s (%s)", (NR > 1 ? " " : ""), $7, $8 }' "$work/res.swarm")"
    if [ -s "$work/swarm.notes" ]; then
        printf '  swarm:  %s\n' "$(paste -sd'|' "$work/swarm.notes" | sed 's/|/\n          /g')"
    fi
    printf '  health seen by: orch: orch status (its own http probe); swarm: docker ps (exec check)\n'
    printf '  other containers on the engine: %d at start, %d at end\n' "$others0" "$(other_containers)"
}

# scripts/bench compass [ROUNDS]: the reference rolling updates, two at a time, N=10 and N=50,
# stop-first and start-first, each a run of its own (its own swarm, left afterwards).
bench_compass() {
    local rounds=${1:-1} nn ord rc=0
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 5 ]] || orch_die "ROUNDS must be 1..5"
    for nn in 10 50; do
        for ord in stop-first start-first; do
            orch_log "compass: rolling $nn, two at a time, $ord"
            ./scripts/bench rolling "$nn" "$rounds" 2 "$ord" || {
                rc=$?
                orch_warn "compass: rolling $nn 2 $ord ended with exit $rc"
            }
        done
    done
    return "$rc"
}

# shellcheck shell=bash disable=SC2154 # work, orch, daemon_pid: globals of bench.d/common.sh
# scripts/bench rolling [N] [ROUNDS]: a rolling update of N instances orch-demo:1 -> orch-demo:2,
# one at a time and new first, gated on a 1 s health probe: embedded `orch apply --image` vs
# `docker service update`, each timed while a background sampler counts healthy instances.
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

# From a sample file and the update's start t0 and size N: "min-healthy max-running
# seconds-until-all-new (or -) samples mean-interval".
roll_summary() {
    awk -v t0="$2" -v n="$3" '
        { if (NR == 1 || $2 < minh) minh = $2
          if ($5 > maxr) maxr = $5
          if (done == "" && $1 >= t0 && $3 >= n && $4 == 0) done = sprintf("%.3f", $1 - t0)
          if (NR == 1) first = $1; last = $1 }
        END { if (NR == 0) { print "- - - 0 -"; exit }
              printf "%d %d %s %d %.2f\n", minh, maxr, (done == "" ? "-" : done), NR,
                     (NR > 1 ? (last - first) / (NR - 1) : 0) }' "$1"
}

bench_rolling() {
    local n=${1:-20} rounds=${2:-3}
    [[ $n =~ ^[0-9]+$ && $n -ge 2 && $n -le 50 ]] || orch_die "N must be 2..50"
    [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 5 ]] || orch_die "ROUNDS must be 1..5"
    bench_prepare
    local app=obench-roll stack=obenchroll svc=obenchroll_web
    local limit=${ORCH_BENCH_ROLL_LIMIT:-600} id1 id2
    orch_apps+=("$app")
    swarm_begin
    id1=$(image_id orch-demo:1)
    id2=$(image_id orch-demo:2)

    cat >"$work/roll.yaml" <<YAML
app: $app
services:
  web:
    image: orch-demo:1
    replicas: $n
    ports: [{name: http, container: 8080}]
    health: {http: /healthz, interval: 1s, timeout: 1s, retries: 3}
    update: {max_surge: 1, max_unavailable: 0, stop_grace: 1s}
YAML
    swarm_stack_file "$work/stack.yml" "$id1" "$n"

    local r t0 t1 rc st sum others0
    others0=$(other_containers)
    : >"$work/orch_cmd"
    : >"$work/swarm_cmd"
    : >"$work/orch_sum"
    : >"$work/swarm_sum"
    for r in $(seq 1 "$rounds"); do
        # orch, embedded: apply revision 1, then time the apply of the new image
        rm -rf "$work/state"
        orch_cmd apply "$work/roll.yaml" >"$work/orch.log" 2>&1 ||
            bench_fail orch.log "orch apply of revision 1 failed"
        poll_count 120 "$n" orch_healthy "$app/web" >/dev/null ||
            bench_fail orch.log "orch: $n healthy instances not reached"
        sampler_start "$work/orch.samples$r" "$((limit + 60))" orch_roll_sample "$app/web" 2
        sleep 0.5
        t0=$(now)
        rc=0
        timeout "$((limit + 30))" "$orch" --state "$work/state" apply "$work/roll.yaml" \
            --image web=orch-demo:2 --timeout "${limit}s" >>"$work/orch.log" 2>&1 || rc=$?
        t1=$(now)
        sleep 0.5
        sampler_stop
        [ "$rc" -eq 0 ] || bench_fail orch.log "orch apply --image web=orch-demo:2 exited $rc"
        elapsed "$t0" "$t1" >>"$work/orch_cmd"
        roll_summary "$work/orch.samples$r" "$t0" "$n" >>"$work/orch_sum"
        orch_cmd delete --app "$app" >>"$work/orch.log" 2>&1 || bench_fail orch.log "orch delete failed"

        # Swarm: deploy with image 1, then time the service update to image 2
        swarm_deploy "$stack" "$work/stack.yml"
        poll_count 300 "$n" swarm_healthy "$svc" >/dev/null ||
            bench_fail swarm.log "swarm: $n healthy tasks not reached in 300 s"
        sampler_start "$work/swarm.samples$r" "$((limit + 60))" swarm_roll_sample "$svc" "$id2"
        sleep 0.5
        t0=$(now)
        docker service update --detach --no-resolve-image --image "$id2" \
            --update-parallelism 1 --update-order start-first --update-delay 0s "$svc" \
            >>"$work/swarm.log" 2>&1 || bench_fail swarm.log "docker service update failed"
        st=""
        local deadline=$((SECONDS + limit))
        while [ "$SECONDS" -lt "$deadline" ]; do
            st=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$svc")
            case $st in completed | paused | rollback_*) break ;; esac
            sleep 0.2
        done
        t1=$(now)
        sleep 0.5
        sampler_stop
        case $st in
        completed) elapsed "$t0" "$t1" >>"$work/swarm_cmd" ;;
        paused | rollback_*) bench_fail swarm.log "swarm update ended '$st'" ;;
        *)
            orch_warn "swarm update not completed after ${limit}s (state '$st'); counted as ${limit}s"
            echo "$limit" >>"$work/swarm_cmd"
            ;;
        esac
        roll_summary "$work/swarm.samples$r" "$t0" "$n" >>"$work/swarm_sum"
        swarm_remove "$stack"

        sum=$(awk -v r="$r" 'NR == r' "$work/orch_sum")
        orch_log "round $r/$rounds: orch $(tail -n 1 "$work/orch_cmd")s (min healthy ${sum%% *}), swarm $(tail -n 1 "$work/swarm_cmd")s (min healthy $(awk -v r="$r" 'NR == r { print $1 }' "$work/swarm_sum"))"
    done

    local oc sc od sd
    oc=$(median <"$work/orch_cmd")
    sc=$(median <"$work/swarm_cmd")
    # rounds where "all new" was never seen by the sampler are left out of its median
    od="" sd=""
    ! grep -qv '^[0-9]* [0-9]* - ' "$work/orch_sum" ||
        od=$(awk '$3 != "-" { print $3 }' "$work/orch_sum" | median)
    ! grep -qv '^[0-9]* [0-9]* - ' "$work/swarm_sum" ||
        sd=$(awk '$3 != "-" { print $3 }' "$work/swarm_sum" | median)
    printf 'rolling: %d instances orch-demo:1 -> orch-demo:2, one at a time, new first, 1 s probe\n' "$n"
    printf '         median of %d rounds (seconds); floor = replicas - max_unavailable = %d\n' "$rounds" "$n"
    printf '  orch apply --image (embedded), until it returned:        %s   rounds: %s\n' \
        "$oc" "$(paste -sd' ' "$work/orch_cmd")"
    printf '  orch, until %d new healthy and no old running (sampled):  %s\n' "$n" "${od:--}"
    printf '  docker service update, until UpdateStatus completed:     %s   rounds: %s\n' \
        "$sc" "$(paste -sd' ' "$work/swarm_cmd")"
    printf '  swarm, until %d new healthy and no old running (sampled): %s\n' "$n" "${sd:--}"
    printf '  orch vs swarm, command/update end:                       %s\n' "$(ratio "$oc" "$sc")"
    [ -z "$od" ] || [ -z "$sd" ] ||
        printf '  orch vs swarm, all new healthy:                          %s\n' "$(ratio "$od" "$sd")"
    printf '  fewest healthy seen, per round:  orch %s   swarm %s\n' \
        "$(awk '{ print $1 }' "$work/orch_sum" | paste -sd' ')" \
        "$(awk '{ print $1 }' "$work/swarm_sum" | paste -sd' ')"
    printf '  most running at once, per round: orch %s   swarm %s\n' \
        "$(awk '{ print $2 }' "$work/orch_sum" | paste -sd' ')" \
        "$(awk '{ print $2 }' "$work/swarm_sum" | paste -sd' ')"
    printf '  samples (mean interval s):       orch %s   swarm %s\n' \
        "$(awk '{ printf "%s%d (%.2f)", (NR > 1 ? " " : ""), $4, $5 }' "$work/orch_sum")" \
        "$(awk '{ printf "%s%d (%.2f)", (NR > 1 ? " " : ""), $4, $5 }' "$work/swarm_sum")"
    printf '  health seen by: orch: orch status (its own http probe); swarm: docker ps (exec check)\n'
    printf '  other containers on the engine: %d at start, %d at end\n' "$others0" "$(other_containers)"
}

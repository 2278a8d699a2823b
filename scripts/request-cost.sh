#!/usr/bin/env bash
# CPU time per request of each demo with gmr against the same demo with --no-gmr.
#
#   scripts/request-cost.sh [PAIRS] [SECONDS]      (defaults: 21 pairs, 2 s of load each)
#
# DEMO_DIR=dir runs the demo binaries found there instead of building them (to compare two
# builds: run the script once per directory). DEMOS="axum-demo tower-demo" runs only those.
#
# Per pair, both servers run at once, fresh and warmed up (1 s of load each), each with one
# worker (--workers 1), both pinned to core 0; the load generator (wrk, Debian package `wrk`)
# is pinned to core 1 and loads one server at a time (`GET /`, CONNECTIONS connections), the
# other one idle. A pair is one slice of SECONDS on each, in alternating order. A slice reads
# the loaded server's CPU time before and after (the sum of the run time in
# /proc/<pid>/task/*/schedstat, in ns, all its threads) and divides it by the requests wrk
# completed. The slices of a pair follow each other within seconds, so the machine's drift
# (its speed varies by several percent from minute to minute on shared cores) hits both arms
# alike; the ratio of a pair is with/without. The script prints every slice and, per demo,
# the median CPU time per request of each arm and the median of the pairs' ratios (the
# target is at most 1.03).
#
# Fresh servers for every pair (RESTART_EVERY=N: every N pairs) because a server process
# keeps a cost of its own for its whole life, a few percent either way (where its memory
# and sockets landed): with both servers kept up for the whole run, every pair of a run read
# about the same ratio from the first pair to the last, and runs differed by as much as the
# target (tower-demo 1.019 to 1.057 in four runs); fresh servers average that over PAIRS
# processes of each arm.
#
# A benchmark, not a test: not run by CI. Needs 2 cores, bash 4.4 or later, `taskset` and
# `wrk`.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${1:-21}
SECONDS_OF_LOAD=${2:-2}
CONNECTIONS=${CONNECTIONS:-8}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
DEMOS=${DEMOS:-axum-demo actix-demo tower-demo}
RESTART_EVERY=${RESTART_EVERY:-1}
[[ $RESTART_EVERY =~ ^[1-9][0-9]*$ ]] || { echo "RESTART_EVERY is a number of pairs (1 or more), not '$RESTART_EVERY'" >&2; exit 2; }

for tool in wrk taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk util-linux)" >&2; exit 2; }
done

DEMO_DIR=${DEMO_DIR:-}
if [[ -z $DEMO_DIR ]]; then
    cargo build --release -q -p gmr-examples --bin axum-demo --bin actix-demo --bin tower-demo
    DEMO_DIR=target/release
fi
WORK=$(mktemp -d)
SERVERS=()
cleanup() {
    local server
    for server in "${SERVERS[@]}"; do kill "$server" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# cpu_ns PID: "threads ns": how many threads the process has and their CPU time in ns.
# (A thread that exits takes its time with it: a slice whose thread count changed is
# measured again.)
cpu_ns() {
    local stats
    stats=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null || true)
    awk '{ s += $1 } END { printf "%d %.0f\n", NR, s }' <<<"$stats"
}

# start DEMO MODE: starts the demo, sets PID and ADDR.
start() {
    local demo=$1 mode=$2 flags=()
    [[ $mode == without ]] && flags=(--no-gmr)
    taskset -c "$SERVER_CPU" "$DEMO_DIR/$demo" --listen 127.0.0.1:0 --workers 1 "${flags[@]}" \
        >"$WORK/$mode.out" 2>"$WORK/$mode.err" &
    PID=$!
    SERVERS+=("$PID")
    ADDR=""
    local i
    for i in $(seq 1 500); do
        ADDR=$(sed -n 's#^listening on http://\(.*\)$#\1#p' "$WORK/$mode.out" | head -n1)
        [[ -n $ADDR ]] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.02
    done
    echo "$demo ($mode) did not start: $(cat "$WORK/$mode.err")" >&2
    exit 1
}

# slice PID ADDR: loads the server for SECONDS_OF_LOAD; prints "ns_per_request requests".
slice() {
    local pid=$1 addr=$2 attempt threads_before before threads_after after requests
    for attempt in 1 2 3; do
        read -r threads_before before < <(cpu_ns "$pid")
        requests=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_OF_LOAD}s" \
            "http://$addr/" | awk '/requests in/ { print $1 }')
        read -r threads_after after < <(cpu_ns "$pid")
        if [[ ${requests:-0} -gt 0 && $threads_before -eq $threads_after ]]; then
            awk -v d=$((after - before)) -v r="$requests" 'BEGIN { printf "%.1f %d\n", d / r, r }'
            return 0
        fi
        echo "slice on $addr measured again: ${requests:-0} requests, threads $threads_before -> $threads_after" >&2
    done
    echo "no usable slice on $addr (is the server still up?)" >&2
    exit 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "pairs=$PAIRS seconds=$SECONDS_OF_LOAD connections=$CONNECTIONS server_cpu=$SERVER_CPU load_cpu=$LOAD_CPU restart_every=$RESTART_EVERY"
# start_pair DEMO: fresh servers of both arms, warmed up (connections, caches, the
# allocator's arenas); sets pid[] and addr[].
start_pair() {
    local mode
    for mode in with without; do
        start "$1" "$mode"
        pid[$mode]=$PID
        addr[$mode]=$ADDR
        taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d1s "http://$ADDR/" >/dev/null
    done
}

stop_pair() {
    kill "${pid[with]}" "${pid[without]}" 2>/dev/null || true
    wait "${pid[with]}" "${pid[without]}" 2>/dev/null || true
    SERVERS=()
}

for demo in $DEMOS; do
    declare -A pid=() addr=()
    : >"$WORK/with" ; : >"$WORK/without" ; : >"$WORK/ratio"
    for pair in $(seq 1 "$PAIRS"); do
        if (( (pair - 1) % RESTART_EVERY == 0 )); then
            ((pair > 1)) && stop_pair
            start_pair "$demo"
        fi
        if ((pair % 2)); then order=(with without); else order=(without with); fi
        declare -A ns=()
        for mode in "${order[@]}"; do
            read -r cost requests < <(slice "${pid[$mode]}" "${addr[$mode]}")
            ns[$mode]=$cost
            echo "$cost" >>"$WORK/$mode"
            echo "$demo pair $pair $mode: $cost ns CPU/request ($requests requests)"
        done
        awk -v a="${ns[with]}" -v b="${ns[without]}" 'BEGIN { printf "%.4f\n", a / b }' >>"$WORK/ratio"
        unset ns
    done
    stop_pair
    printf '%s: median with gmr %s ns, without %s ns, median ratio %s\n' "$demo" \
        "$(median <"$WORK/with")" "$(median <"$WORK/without")" "$(median <"$WORK/ratio")" \
        | tee -a "$WORK/summary"
    unset pid addr
done
echo "== summary"
cat "$WORK/summary"

#!/usr/bin/env bash
# CPU time per request of each demo with gmr against the same demo with --no-gmr.
#
#   scripts/request-cost.sh [PAIRS] [SECONDS]      (defaults: 9 pairs, 4 s of load each)
#
# DEMO_DIR=dir runs the demo binaries found there instead of building them (to compare two
# builds: run the script once per directory).
# Each demo runs with one worker (--workers 1) pinned to core 0, the load generator (wrk,
# Debian package `wrk`) pinned to core 1. A pair is one run with gmr and one without, in
# alternating order; each run warms up for 1 s, then reads the server's CPU time (utime +
# stime of /proc/<pid>/stat, all its threads) before and after SECONDS of load on `GET /`
# and divides by the requests wrk completed. The ratio of a pair is with/without; the script
# prints every run and, per adapter, the median CPU time per request of each arm and the
# median of the pairs' ratios (the target is at most 1.03).
#
# A benchmark, not a test: not run by CI. Needs 2 cores, `taskset` and `wrk`.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${1:-9}
SECONDS_OF_LOAD=${2:-4}
CONNECTIONS=${CONNECTIONS:-8}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

for tool in wrk taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk util-linux)" >&2; exit 2; }
done

DEMO_DIR=${DEMO_DIR:-}
if [[ -z $DEMO_DIR ]]; then
    cargo build --release -q -p gmr-examples --bin axum-demo --bin actix-demo --bin tower-demo
    DEMO_DIR=target/release
fi
TICKS=$(getconf CLK_TCK)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; [[ -n "${SERVER:-}" ]] && kill "$SERVER" 2>/dev/null || true' EXIT

# cpu_ticks PID: utime + stime of the whole process.
cpu_ticks() {
    # Fields after the `comm` (which may hold spaces): state is field 3, utime 14, stime 15.
    local rest
    rest=$(sed 's/^.*) //' "/proc/$1/stat")
    awk '{ print $12 + $13 }' <<<"$rest"
}

# run DEMO MODE: prints "ns_per_request requests".
run() {
    local demo=$1 mode=$2 flags=()
    [[ $mode == without ]] && flags=(--no-gmr)
    local out="$WORK/out"
    : >"$out"
    taskset -c "$SERVER_CPU" "$DEMO_DIR/$demo" --listen 127.0.0.1:0 --workers 1 "${flags[@]}" \
        >"$out" 2>"$WORK/err" &
    SERVER=$!
    local addr="" i
    for i in $(seq 1 500); do
        addr=$(sed -n 's#^listening on http://\(.*\)$#\1#p' "$out" | head -n1)
        [[ -n $addr ]] && break
        sleep 0.02
    done
    [[ -n $addr ]] || { echo "$demo did not start: $(cat "$WORK/err")" >&2; exit 1; }
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d1s "http://$addr/" >/dev/null
    local before after requests
    before=$(cpu_ticks "$SERVER")
    requests=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_OF_LOAD}s" "http://$addr/" \
        | awk '/requests in/ { print $1 }')
    after=$(cpu_ticks "$SERVER")
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    awk -v d=$((after - before)) -v t="$TICKS" -v r="$requests" \
        'BEGIN { printf "%.1f %d\n", d * 1e9 / t / r, r }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "pairs=$PAIRS seconds=$SECONDS_OF_LOAD connections=$CONNECTIONS server_cpu=$SERVER_CPU load_cpu=$LOAD_CPU"
for demo in axum-demo actix-demo tower-demo; do
    : >"$WORK/with" ; : >"$WORK/without" ; : >"$WORK/ratio"
    for pair in $(seq 1 "$PAIRS"); do
        if ((pair % 2)); then order=(with without); else order=(without with); fi
        declare -A ns=()
        for mode in "${order[@]}"; do
            read -r cost requests < <(run "$demo" "$mode")
            ns[$mode]=$cost
            echo "$cost" >>"$WORK/$mode"
            echo "$demo pair $pair $mode: $cost ns CPU/request ($requests requests)"
        done
        awk -v a="${ns[with]}" -v b="${ns[without]}" 'BEGIN { printf "%.4f\n", a / b }' >>"$WORK/ratio"
        unset ns
    done
    printf '%s: median with gmr %s ns, without %s ns, median ratio %s\n' "$demo" \
        "$(median <"$WORK/with")" "$(median <"$WORK/without")" "$(median <"$WORK/ratio")" \
        | tee -a "$WORK/summary"
done
echo "== summary"
cat "$WORK/summary"

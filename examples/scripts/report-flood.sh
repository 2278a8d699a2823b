#!/usr/bin/env bash
# Memory and throughput of axum-demo under a flood of reports (docs/performance.md, "Under a
# flood of reports"). Needs wrk and curl; builds the release demo first.
#
#   [CONNECTIONS=1000] [ROUNDS=3] [DEMO=path/to/axum-demo] examples/scripts/report-flood.sh [SECONDS]
#
# 1. RSS after start, after one report over HTTP, right after a SECONDS (default 10) flood of
#    valid-token admin requests on CONNECTIONS connections with `admin.min_interval = "1ms"`
#    (every request may make a report), and 3 s after the flood (gmr gives the allocator's
#    free memory back once its reporter has been idle for a second).
# 2. Requests per second on `/` while idle, then while 1000 SIGUSR2 arrive 10 ms apart (with
#    the default `min_interval = "1s"`), ROUNDS times alternately, with the median ratio, how
#    many reports each flood of signals made and the CPU the demo used; then one flood without
#    load, and the CPU the demo spent on it.
#
# DEMO runs another build of axum-demo (an older release, to compare) instead of building this
# one.
set -euo pipefail

seconds=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${DEMO:-}" ]; then
    cargo build --release -q -p gmr-examples --bin axum-demo --manifest-path "$root/Cargo.toml"
fi
demo=${DEMO:-$target/release/axum-demo}
rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'kill ${pid:-} ${dummy:-} 2>/dev/null || true; rm -rf "$work"' EXIT

token=flood-bench-token-0123456789abcdef
cat >"$work/flood.toml" <<TOML
[gmr.admin]
token = "$token"
min_interval = "1ms"
TOML

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }

start_demo() {
    "$demo" --listen 127.0.0.1:0 --config "$1" >"$work/stdout" 2>"$work/stderr" &
    pid=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's|^listening on http://||p' "$work/stdout")
        [ -n "$addr" ] && return
        sleep 0.1
    done
    echo "the demo did not start" >&2
    exit 1
}

rps() { sed -n 's/^Requests\/sec: *//p'; }

# CPU seconds (user + system) the demo has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat"; }

start_demo "$work/flood.toml"
echo "rss_after_start_kb=$(rss_kb)"
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://$addr/admin/gmr"
echo "rss_after_one_report_kb=$(rss_kb)"
flood=$(wrk -t2 -c"${CONNECTIONS:-1000}" -d"${seconds}s" -H "Authorization: Bearer $token" "http://$addr/admin/gmr")
echo "admin_flood_requests_per_sec=$(echo "$flood" | rps)"
echo "rss_after_flood_kb=$(rss_kb)"
sleep 3
echo "rss_3s_after_flood_kb=$(rss_kb)"
kill "$pid"
wait "$pid" 2>/dev/null || true

: >"$work/empty.toml"
start_demo "$work/empty.toml"
# Warm up: the first report loads the binary's debug information (once per process).
kill -USR2 "$pid"
for _ in $(seq 100); do
    grep -q 'gmr report written' "$work/stderr" && break
    sleep 0.1
done

# 1000 signals 10 ms apart to process $1. The same loop runs during the idle measurement,
# aimed at a process that ignores them, so both measurements pay for the sender alike.
signal_flood() { for _ in $(seq 1000); do kill -USR2 "$1" 2>/dev/null || true; sleep 0.01; done; }
sh -c 'trap "" USR2; exec sleep 3600' &
dummy=$!
ratios=""
for round in $(seq "$rounds"); do
    signal_flood "$dummy" &
    sender=$!
    cpu0=$(cpu_s)
    idle=$(wrk -t2 -c8 -d"${seconds}s" "http://$addr/" | rps)
    cpu1=$(cpu_s)
    kill "$sender" 2>/dev/null || true
    wait "$sender" 2>/dev/null || true

    before=$(grep -c 'gmr report written' "$work/stderr" || true)
    signal_flood "$pid" &
    sender=$!
    cpu2=$(cpu_s)
    flooded=$(wrk -t2 -c8 -d"${seconds}s" "http://$addr/" | rps)
    cpu3=$(cpu_s)
    wait "$sender"
    sleep 1.5
    made=$(grep -c 'gmr report written' "$work/stderr" || true)
    ratio=$(awk -v a="$flooded" -v b="$idle" 'BEGIN { printf "%.3f", a / b }')
    ratios="$ratios $ratio"
    idle_cpu=$(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN { printf "%.2f", a - b }')
    flood_cpu=$(awk -v a="$cpu3" -v b="$cpu2" 'BEGIN { printf "%.2f", a - b }')
    echo "round=$round idle_requests_per_sec=$idle sigusr2_flood_requests_per_sec=$flooded ratio=$ratio reports_from_1000_signals=$((made - before)) demo_cpu_s_idle=$idle_cpu demo_cpu_s_flood=$flood_cpu"
done
kill "$dummy" 2>/dev/null || true
# The flood alone, without load: the CPU the reports it makes cost the process.
before=$(grep -c 'gmr report written' "$work/stderr" || true)
cpu0=$(cpu_s)
signal_flood "$pid"
sleep 1.5
cpu1=$(cpu_s)
made=$(grep -c 'gmr report written' "$work/stderr" || true)
echo "unloaded_flood_reports=$((made - before)) unloaded_flood_demo_cpu_s=$(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN { printf "%.2f", a - b }')"
echo "median_ratio=$(echo "$ratios" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"

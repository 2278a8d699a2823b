#!/usr/bin/env bash
# Memory and throughput of axum-demo under a flood of reports (docs/performance.md, "Under a
# flood of reports"). Needs wrk and curl; builds the release demo first.
#
#   [CONNECTIONS=1000] examples/scripts/report-flood.sh [SECONDS]
#
# 1. RSS after start, after one report over HTTP, right after a SECONDS (default 10) flood of
#    valid-token admin requests on CONNECTIONS connections with `admin.min_interval = "1ms"`
#    (every request may make a report), and 3 s after the flood (gmr gives the allocator's
#    free memory back once its reporter has been idle for a second).
# 2. Requests per second on `/` while idle, then while 1000 SIGUSR2 arrive 10 ms apart (with
#    the default `min_interval = "1s"`), and how many reports the signals made.
set -euo pipefail

seconds=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p gmr-examples --bin axum-demo --manifest-path "$root/Cargo.toml"
demo=$target/release/axum-demo
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

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
warm=$(grep -c 'gmr report written' "$work/stderr" || true)

# 1000 signals 10 ms apart to process $1. The same loop runs during the idle measurement,
# aimed at a process that ignores them, so both measurements pay for the sender alike.
signal_flood() { for _ in $(seq 1000); do kill -USR2 "$1" 2>/dev/null || true; sleep 0.01; done; }
sh -c 'trap "" USR2; exec sleep 3600' &
dummy=$!
signal_flood "$dummy" &
sender=$!
idle=$(wrk -t2 -c8 -d"${seconds}s" "http://$addr/" | rps)
kill "$sender" "$dummy" 2>/dev/null || true
wait "$sender" "$dummy" 2>/dev/null || true
echo "idle_requests_per_sec=$idle"

signal_flood "$pid" &
sender=$!
flooded=$(wrk -t2 -c8 -d"${seconds}s" "http://$addr/" | rps)
wait "$sender"
echo "sigusr2_flood_requests_per_sec=$flooded"
echo "sigusr2_flood_throughput_ratio=$(awk -v a="$flooded" -v b="$idle" 'BEGIN { printf "%.3f", a / b }')"
sleep 1.5
made=$(grep -c 'gmr report written' "$work/stderr" || true)
echo "reports_from_1000_signals=$((made - warm))"

#!/usr/bin/env bash
# Call-setup load run (DESIGN §9): SIPp places INVITE → 200 → ACK → BYE
# calls at RATE per second for SECONDS against a release build of the
# switch on loopback, and this script reports SIPp's outcome, the
# INVITE→200 response-time percentiles and the switch's CPU share.
#
#   scripts/sip-load.sh [RATE] [SECONDS] [HOLD_MS]
#
# Needs `sipp` (Debian package sip-tester). Builds the release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${1:-1000}
seconds=${2:-60}
hold=${3:-1000}
calls=$((rate * seconds))
work=$(mktemp -d /tmp/switchboard-load.XXXXXX)
trap 'kill "$switch_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    cargo build --release --quiet
fi
bin=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-target}/release/switchboard}

RUST_LOG=warn,switchboard=info "$bin" serve \
    --sip-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --public-ip 127.0.0.1 \
    --database-url "sqlite://$work/load.db" --admin-token load \
    --rtp-ports 20000-39999 2>"$work/switch.log" &
switch_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening sip=" "$work/switch.log" 2>/dev/null && break
    sleep 0.1
done
sip=$(grep -o 'listening sip=[^ ]*' "$work/switch.log" | cut -d= -f2 || true)
[ -n "$sip" ] || { cat "$work/switch.log"; exit 1; }

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$switch_pid/stat"; }
before=$(cpu_ticks)
start=$(date +%s.%N)

set +e
(cd "$work" && sipp "$sip" -sn uac -s 100 -i 127.0.0.1 -mi 127.0.0.1 -nostdin \
    -p 45060 -cp 48888 -mp 46000 \
    -r "$rate" -m "$calls" -l $((rate * (hold / 1000 + 5))) -d "$hold" \
    -timeout $((seconds + 60))s -timeout_error \
    -trace_stat -stf stats.csv -trace_rtt -rtt_freq 200 >sipp.out 2>&1)
sipp_rc=$?
set -e

end=$(date +%s.%N)
after=$(cpu_ticks)
wall=$(echo "$end - $start" | bc -l)
cpu=$(echo "($after - $before) / $ticks" | bc -l)

last=$(tail -n 1 "$work/stats.csv")
header=$(head -n 1 "$work/stats.csv")
field() { echo "$header" | tr ';' '\n' | grep -n -x "$1" | cut -d: -f1; }
ok=$(echo "$last" | cut -d';' -f"$(field 'SuccessfulCall(C)')")
failed=$(echo "$last" | cut -d';' -f"$(field 'FailedCall(C)')")

# Response time INVITE→200 (ms) of every call, from the -trace_rtt file.
rtt=$(ls "$work"/*_rtt.csv | head -n 1)
read -r p50 p99 max < <(awk -F';' 'NR > 1 && $2 != "" { print $2 }' "$rtt" | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1], v[NR] }')

printf 'sipp exit %s: %s calls ok, %s failed of %s at %s/s (hold %s ms)\n' \
    "$sipp_rc" "$ok" "$failed" "$calls" "$rate" "$hold"
printf 'INVITE->200 ms: p50 %s, p99 %s, max %s\n' "$p50" "$p99" "$max"
printf 'switch CPU: %.1f s over %.1f s wall = %.2f cores\n' "$cpu" "$wall" "$(echo "$cpu / $wall" | bc -l)"
[ "$sipp_rc" -eq 0 ] || { tail -n 30 "$work/sipp.out"; exit 1; }

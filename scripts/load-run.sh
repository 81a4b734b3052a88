# Shared by scripts/ivr-load.sh and scripts/bridge-load.sh (sourced, not
# run): builds the release binaries, starts the switch on the flow folder
# the caller wrote, runs callgen against it and reports the switch's CPU,
# memory and media timing.
#
# The caller sets: calls, rate, hold (the run), number (the number callgen
# dials), callgen_args (an array of extra callgen arguments), settle
# (seconds after the ramp until every call is up), what ("calls", "bridged
# calls"), per_call (what one call is, for the memory line), and a function
# write_flows DIR that writes the load flow into DIR.
#
# NICE=-10 runs the switch and callgen at that priority (as root; also the
# session's scheduler autogroup), to keep other work on a shared machine
# from starving them; say so with figures. RT=N (as root) puts the switch's
# media worker threads in the SCHED_FIFO class at priority N (what media
# servers' "real-time priority" options do), so a runnable generator or
# other process never delays a tick or a relayed packet; say so too.
# MEDIA_NICE=N passes --media-nice N to the switch (its default, -10, ranks
# the media workers before callgen when the switch runs as root; 0 leaves
# them at the switch's priority).

work=$(mktemp -d /tmp/switchboard-load.XXXXXX)
switch_pid=
sampler_pid=
group_nice=
cleanup() {
    [ -n "$group_nice" ] && echo "$group_nice" >/proc/self/autogroup 2>/dev/null || true
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
    [ -n "$switch_pid" ] && kill "$switch_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${SWITCHBOARD_BIN:-}" ] || [ -z "${CALLGEN_BIN:-}" ]; then
    cargo build --release --quiet --bins
fi
bin=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-target}/release/switchboard}
callgen=${CALLGEN_BIN:-${CARGO_TARGET_DIR:-target}/release/callgen}

# Each call: sockets per RTP and RTCP port on the switch and on callgen.
ulimit -n "$(ulimit -Hn)"

mkdir -p "$work/flows" "$work/recordings"
write_flows "$work/flows"

prio=(nice -n "${NICE:-0}")
# With scheduler autogroups (one per session), nice only ranks threads
# within a group; groups share the CPU by their own nice. Give this
# session's group the same priority, so other sessions' work cannot
# starve the run either.
# The group's nice is put back on exit.
if [ -n "${NICE:-}" ] && [ -w /proc/self/autogroup ]; then
    group_nice=$(awk '{ print $3 }' /proc/self/autogroup)
    echo "$NICE" >/proc/self/autogroup 2>/dev/null || true
fi
RUST_LOG=warn,switchboard=info,switchboard::media::engine=debug "${prio[@]}" "$bin" serve \
    --sip-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --public-ip 127.0.0.1 \
    --database-url "sqlite://$work/load.db" --admin-token load \
    --flows "$work/flows" --sounds sounds --recordings "$work/recordings" \
    --rtp-ports 20000-39999 ${MEDIA_NICE:+--media-nice "$MEDIA_NICE"} 2>"$work/switch.log" &
switch_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening sip=" "$work/switch.log" 2>/dev/null && break
    sleep 0.1
done
sip=$(grep -o 'listening sip=[^ ]*' "$work/switch.log" | cut -d= -f2 || true)
[ -n "$sip" ] || { cat "$work/switch.log"; exit 1; }
sleep 1

if [ -n "${RT:-}" ]; then
    for task in /proc/"$switch_pid"/task/*; do
        case "$(cat "$task/comm")" in
        media-[0-9]*) chrt -f -p "$RT" "${task##*/}" >/dev/null || echo "cannot set SCHED_FIFO on ${task##*/}" ;;
        esac
    done
fi

ticks=$(getconf CLK_TCK)
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$switch_pid/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$switch_pid/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$switch_pid/stat"; }

for task in /proc/"$switch_pid"/task/*; do
    case "$(cat "$task/comm")" in
    media-[0-9]*) awk '{ sub(/.*\) /, ""); print $17 }' "$task/stat" ;;
    esac
done | sort -u | tr '\n' ' ' >"$work/media-nice"
rss_before=$(rss_kib)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Once a second: time, switch CPU ticks, RSS (KiB).
(while kill -0 "$switch_pid" 2>/dev/null; do
    echo "$(date +%s.%N) $(cpu_ticks) $(rss_kib)"
    sleep 1
done) >"$work/samples" 2>/dev/null &
sampler_pid=$!

before=$(cpu_ticks)
start=$(date +%s.%N)
set +e
"${prio[@]}" "$callgen" --target "$sip" --number "$number" --calls "$calls" --rate "$rate" \
    --duration "${hold}s" --rtp-ports 40000-59999 "${callgen_args[@]}" |
    tee "$work/callgen.out"
callgen_rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
after=$(cpu_ticks)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
hwm=$(hwm_kib)
rss_end=$(rss_kib)
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=

wall=$(echo "$end - $start" | bc -l)
cpu=$(echo "($after - $before) / $ticks" | bc -l)

# While every call is up: from the end of the ramp plus `settle` seconds
# to the end of the first call's hold minus 1 s.
from=$(echo "$start + $calls / $rate + $settle" | bc -l)
to=$(echo "$start + $hold - 1" | bc -l)
read -r steady_cpu steady_wall steady_rss < <(awk -v a="$from" -v b="$to" '
    $1 >= a && first == "" { first = $1; c0 = $2 }
    $1 <= b { last = $1; c1 = $2 }
    $1 >= a && $1 <= b && $3 > rss { rss = $3 }
    END { if (first == "" || last <= first) print "0 0 0"; else print c1 - c0, last - first, rss }
' "$work/samples")

printf '\nswitch CPU, whole run: %.1f s over %.1f s = %.2f cores\n' "$cpu" "$wall" \
    "$(echo "$cpu / $wall" | bc -l)"
if [ "$(echo "$steady_wall > 0" | bc -l)" -eq 1 ]; then
    printf 'switch CPU, all %s %s up: %.1f s over %.1f s = %.2f cores\n' "$calls" "$what" \
        "$(echo "$steady_cpu / $ticks" | bc -l)" "$steady_wall" \
        "$(echo "$steady_cpu / $ticks / $steady_wall" | bc -l)"
else
    echo "switch CPU, all calls up: no window (hold shorter than ramp + $((settle + 1)) s)"
fi
printf 'switch RSS: %s KiB before, %s KiB peak (VmHWM), %s KiB sampled with all calls up, %s KiB at the end\n' \
    "$rss_before" "$hwm" "$steady_rss" "$rss_end"
if [ "${steady_rss:-0}" -gt 0 ]; then
    printf 'memory per %s: (peak - before) / calls = %.1f KiB; (all up - before) / calls = %.1f KiB\n' "$per_call" \
        "$(echo "($hwm - $rss_before) / $calls" | bc -l)" \
        "$(echo "($steady_rss - $rss_before) / $calls" | bc -l)"
else
    printf 'memory per %s: (peak - before) / calls = %.1f KiB\n' "$per_call" \
        "$(echo "($hwm - $rss_before) / $calls" | bc -l)"
fi
printf 'load average (1/5/15 min): %s before, %s after; nice %s (%s)\n' "$load_before" "$load_after" \
    "${NICE:-0}" "$(cat /proc/self/autogroup 2>/dev/null || echo 'no autogroup')"
[ -z "${RT:-}" ] || echo "media workers: SCHED_FIFO priority $RT"
echo "media workers' nice: $(cat "$work/media-nice" 2>/dev/null || echo unknown)"
if grep -q "media worker timing" "$work/switch.log"; then
    echo "media worker timing (10 s windows; send = frame off its slot, wake = tick start off its deadline, work = one tick):"
    grep "media worker timing" "$work/switch.log" | sed 's/^.*media worker timing/ /' | tail -n 8
fi
if grep -q ' WARN \| ERROR ' "$work/switch.log"; then
    echo "switch warnings/errors (last 10):"
    grep ' WARN \| ERROR ' "$work/switch.log" | tail -n 10
fi
exit "$callgen_rc"

#!/usr/bin/env bash
# Concurrent IVR call load run (DESIGN §9): `callgen` places CALLS calls at
# RATE per second against a release build of the switch on loopback, each
# held HOLD seconds with RTP both ways while the switch plays the music on
# hold as a menu prompt (RFC 4733 and in-band DTMF detection running).
# Reports callgen's summary (loss, jitter, arrival off the 20 ms grid,
# first RTP after the ACK, its own CPU), the switch's CPU share over the whole run and while every call
# is up, its RSS before and at peak, the media workers' timing log (send
# time off the grid, wake-up lateness, tick work per 10 s window) and the
# load average.
#
#   scripts/ivr-load.sh [CALLS] [RATE] [HOLD_SECONDS]
#
# Builds the release binaries first (set SWITCHBOARD_BIN and CALLGEN_BIN to
# skip). The hold should outlast the ramp (CALLS / RATE) by a few seconds.
# NICE and RT: see scripts/load-run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

calls=${1:-1000}
rate=${2:-200}
hold=${3:-25}
number=100
callgen_args=()
start=music
music='music: { play: hold.wav, next: wait }'
# DTMF=1@20s: each call presses 1 that long after its answer, in the menu
# (the flow then starts there): the report adds digit -> last RTP packet,
# how long the prompt went on after the key (DESIGN §9: DTMF -> prompt
# stops), as the menu cuts its prompt and hangs up.
if [ -n "${DTMF:-}" ]; then
    callgen_args=(--dtmf "$DTMF")
    start=wait
    music=
fi
settle=2
what="calls"
per_call="call"

# Number 100 plays the music on hold, then again as a menu prompt that
# waits 60 s for a key: 48 s of continuous audio per call.
write_flows() {
    cat >"$1/load.yaml" <<EOF
name: load
numbers: ["100"]
start: $start
nodes:
  $music
  wait:
    menu:
      prompt: hold.wav
      options: { "1": bye }
      timeout: 60s
      tries: 1
      failure: bye
  bye: { hangup: {} }
EOF
}

. scripts/load-run.sh

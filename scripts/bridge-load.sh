#!/usr/bin/env bash
# Concurrent bridged call load run (DESIGN §9, "bridged caller↔agent
# calls"): `callgen` places CALLS calls at RATE per second against a
# release build of the switch on loopback and also plays the agents'
# phones. The load-test flow (scripts/load-flows/bridge) transfers every
# call to callgen's answering side, so each call is two legs on the switch
# bridged with SSRC/sequence/timestamp rewrite (and recorded in stereo, as
# every bridged call is). Both ends send 20 ms frames tagged with their send
# time for HOLD seconds.
#
# Reports callgen's summary (loss, jitter and the switch's added delay in
# each direction, its own CPU), the switch's CPU share over the whole run
# and while every call is up, its RSS before, at peak and with every call
# up, the memory per bridged call, the media workers' timing log, and the
# load average.
#
#   scripts/bridge-load.sh [CALLS] [RATE] [HOLD_SECONDS]
#
# Builds the release binaries first (set SWITCHBOARD_BIN and CALLGEN_BIN to
# skip). The hold should outlast the ramp (CALLS / RATE) by a few seconds.
# AGENT_PORT (default 45090) is callgen's SIP port for the answering side.
# NICE and RT: see scripts/load-run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

calls=${1:-1500}
rate=${2:-200}
hold=${3:-25}
agent_port=${AGENT_PORT:-45090}
number=500
callgen_args=(--agent-listen "127.0.0.1:$agent_port")
# The transfer and the agent's answer follow the ramp.
settle=3
what="bridged calls"
per_call="bridged call (two legs)"

write_flows() {
    sed "s/AGENT_PORT/$agent_port/" scripts/load-flows/bridge/bridge.yaml >"$1/bridge.yaml"
}

. scripts/load-run.sh

#!/usr/bin/env bash
# Latency and loss as the user sees them (issue 15): one node, the reference client through `kairo netsim`,
# and the client's report: per-stage p50/p99, the overhead (time that is neither work nor the network),
# late frames, display slots that showed a new correct frame, held frames and freezes. Usage (from the
# project root, after scripts/build.sh):
#   bench/latency.sh [--size 256x256] [--fps 30] [--duration 20] [--loss 5] [--burst 4] [--delay 20]
#                    [--trace FILE] [--kairo BINARY] [--label NAME] [--loss-recovery repair|keyframe|intra-refresh]
# Prints the table; writes out/latency/<label>/report.json and the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
size=256x256 fps=30 duration=20 loss=0 burst=1 delay=20 trace="" kairo=$root/build/kairo label="" recovery=repair
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift ;;
    --fps) fps=$2; shift ;;
    --duration) duration=$2; shift ;;
    --loss) loss=$2; shift ;;
    --burst) burst=$2; shift ;;
    --delay) delay=$2; shift ;;
    --trace) trace=$2; shift ;;
    --kairo) kairo=$2; shift ;;
    --label) label=$2; shift ;;
    --loss-recovery) recovery=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$label" ] || label="${size}-${fps}fps-loss${loss}-burst${burst}-delay${delay}"
out=$root/out/latency/$label
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d /tmp/kairo-latency.XXXXXX)
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "latency: $what did not happen; logs in $out/" >&2; exit 1; }
    sleep 0.2
  done
}

"$kairo" devdb >"$work/db.url" 2>"$out/postgres.log" &
pids+=($!)
wait_for 60 "PostgreSQL" test -s "$work/db.url"
db_url=$(head -1 "$work/db.url")
control_port=$(free_port) node_port=$(free_udp_port) relay_port=$(free_udp_port)
export KAIRO_NODE_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export KAIRO_BOOTSTRAP_ADMIN="bench:bench-password-$RANDOM$RANDOM"
"$kairo" control --db "$db_url" --listen "127.0.0.1:$control_port" 2>"$out/control.log" &
pids+=($!)
"$kairo" node --control "http://127.0.0.1:$control_port" --listen-udp "127.0.0.1:$node_port" \
  --metrics 127.0.0.1:0 --max-sessions 1 --loss-recovery "$recovery" --log-level info 2>"$out/node.log" &
pids+=($!)
netsim_args=(--delay "$delay" --seed 1)
[ "$loss" = 0 ] || netsim_args+=(--loss "$loss" --burst "$burst")
"$kairo" netsim --listen "127.0.0.1:$relay_port" --forward "127.0.0.1:$node_port" "${netsim_args[@]}" \
  >"$out/netsim.json" 2>"$out/netsim.log" &
pids+=($!)
wait_for 30 "control plane" python3 -c \
  "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$control_port/readyz"
wait_for 90 "node registration" grep -q "registered as id" "$out/node.log"
trace_args=()
[ -z "$trace" ] || trace_args=(--trace "$trace")
KAIRO_PASSWORD=${KAIRO_BOOTSTRAP_ADMIN#*:} "$kairo" client --control "http://127.0.0.1:$control_port" \
  --user bench --scene vr-room --size "$size" --fps "$fps" --duration "$duration" "${trace_args[@]}" \
  --via "127.0.0.1:$relay_port" --report "$out/report.json" --log-level "${KAIRO_BENCH_CLIENT_LOG_LEVEL:-info}" >/dev/null 2>"$out/client.log"
python3 - "$out/report.json" "$label" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
slots = max(1, r.get("display_slots", 0))
print(f"{sys.argv[2]}: {r['frames_decoded']} of {r['frames_sent']} frames decoded, {r['frames_late']} late "
      f"({100 * r['frames_late'] / max(1, r['frames_sent']):.1f} %), {r['frames_lost']} lost, {r['keyframes']} keyframes")
if "display_slots" in r:
    print(f"  display: {r['frames_displayed_correct']} of {r['display_slots']} slots showed a new correct frame "
          f"({100 * r['frames_displayed_correct'] / slots:.2f} %), {r['frames_held']} held, frozen longest "
          f"{r['frozen_ms']['longest']:.0f} ms total {r['frozen_ms']['total']:.0f} ms, "
          f"{r['frames_broken_chain']} decoded from a broken chain (not shown)")
if "pose_interval_ms" in r:
    line = f"  pose interval {r['pose_interval_ms']:.1f} ms"
    if "pose_datagrams_per_interval" in r:
        d = r["pose_datagrams_per_interval"]
        line += (f", {d['mean']:.2f} pose datagrams an interval (at most {d['max']}), "
                 f"uplink loss {100 * r['uplink_loss']:.1f} % as the node counts it")
    print(line)
print(f"  {'stage':<14}{'p50':>8}{'p99':>8}")
for stage in ["uplink", "pose_wait", "render", "encode_queue", "encode", "pacing", "send", "network", "decode",
              "total", "overhead", "pose_age"]:
    v = r["latency_ms"].get(stage)
    if v: print(f"  {stage:<14}{v['p50']:>8.1f}{v['p99']:>8.1f}")
PY

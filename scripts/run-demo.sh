#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds, and runs Kairo end to end on loopback:
# a throwaway PostgreSQL, the control plane, one GPU node (lavapipe here), and the reference client streaming
# the VR room for about 20 s along a recorded head trace (a synthetic one without ../shared) through
# `kairo netsim` with mild loss. Ends with a short report and a contact sheet of decoded frames.
# Everything it starts is stopped at the end, also on Ctrl-C.
# Then the browser client: the page the control plane serves, opened in headless Chromium over WebRTC, with a
# screenshot of it streaming saved to out/demo/browser.png. With --serve the demo keeps the control plane and
# node running afterwards, so that a person on this machine can open the printed URL in a browser.
# Usage: scripts/run-demo.sh [--no-setup] [--duration S] [--size WxH] [--fps N] [--serve]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

setup=1 duration=20 size=512x512 fps=30 serve=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-setup) setup=0 ;;
    --duration) duration=$2; shift ;;
    --size) size=$2; shift ;;
    --fps) fps=$2; shift ;;
    --serve) serve=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$setup" = 1 ]; then
  scripts/setup.sh
  scripts/build.sh
fi

out=$root/out/demo
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d /tmp/kairo-demo.XXXXXX)
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. A throwaway PostgreSQL: `kairo devdb` (the same helper the tests use) prints its URL and stops it on
#    SIGTERM.
build/kairo devdb >"$work/db.url" 2>"$out/postgres.log" &
pids+=($!)
for _ in $(seq 1 600); do
  [ -s "$work/db.url" ] && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$out/postgres.log" >&2; exit 1; }
  sleep 0.1
done
db_url=$(head -1 "$work/db.url")
[ -n "$db_url" ] || { echo "demo: PostgreSQL did not start" >&2; cat "$out/postgres.log" >&2; exit 1; }
echo "demo: PostgreSQL at $db_url (throwaway)"

# 2. Control plane, node, netsim. Secrets travel in the environment, not argv.
control_port=$(free_port) node_port=$(free_udp_port) relay_port=$(free_udp_port) metrics_port=$(free_port)
export KAIRO_NODE_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export KAIRO_BOOTSTRAP_ADMIN="demo:demo-password-$RANDOM$RANDOM"
build/kairo control --db "$db_url" --listen "127.0.0.1:$control_port" \
  --log-level info 2>"$out/control.log" &
pids+=($!)
build/kairo node --control "http://127.0.0.1:$control_port" --listen-udp "127.0.0.1:$node_port" \
  --metrics "127.0.0.1:$metrics_port" --max-sessions 2 --log-level info 2>"$out/node.log" &
pids+=($!)
build/kairo netsim --listen "127.0.0.1:$relay_port" --forward "127.0.0.1:$node_port" --loss 1 --delay 10 \
  --jitter 2 --seed 1 >"$out/netsim.json" 2>"$out/netsim.log" &
pids+=($!)
echo "demo: control plane http://127.0.0.1:$control_port, node UDP $node_port (metrics :$metrics_port)," \
  "netsim $relay_port -> $node_port (1 % loss, 10 ms delay, 2 ms jitter)"

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "demo: $what did not happen in time; logs in $out/" >&2
      tail -n 5 "$out"/control.log "$out"/node.log >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}
wait_for 30 "control plane ready" python3 -c \
  "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$control_port/readyz"
wait_for 90 "node registration" grep -q "registered as id" "$out/node.log"

# 3. The reference client through netsim.
trace=../shared/data/head-traces/real-user1.jsonl
trace_args=()
if [ -f "$trace" ]; then
  trace_args=(--trace "$trace")
  echo "demo: head motion from a recorded trace ($trace)"
else
  echo "demo: synthetic head motion"
fi
user=${KAIRO_BOOTSTRAP_ADMIN%%:*}
KAIRO_PASSWORD=${KAIRO_BOOTSTRAP_ADMIN#*:} build/kairo client --control "http://127.0.0.1:$control_port" \
  --user "$user" --scene vr-room --size "$size" --fps "$fps" --duration "$duration" "${trace_args[@]}" \
  --via "127.0.0.1:$relay_port" --room demo --hands --save "$out/frames" --save-every 15 \
  --report "$out/report.json" \
  --log-level info >/dev/null 2>"$out/client.log" || {
  echo "demo: the client failed:" >&2
  tail -n 20 "$out/client.log" >&2
  exit 1
}
python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" \
  "http://127.0.0.1:$metrics_port/metrics" >"$out/node-metrics.txt" || true
build/kairo contact-sheet --in "$out/frames" --every 1 --out "$out/contact-sheet.png" >/dev/null

# 4. The report.
python3 - "$out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"demo: {r['frames_decoded']} of {r['frames_sent']} frames decoded in {r['duration_s']:.1f} s "
      f"({r['fps']:.1f} fps), {r['frames_lost']} lost, {r['frames_late']} late, "
      f"{r['frames_recovered']} recovered by FEC/NACK, bitrate {r['bitrate_bps'] / 1e6:.2f} Mbit/s, "
      f"RTT {r['rtt_ms']:.1f} ms")
print("demo: latency, pose sampled -> frame decoded (ms):")
print(f"  {'stage':<14}{'p50':>8}{'p99':>8}")
order = ["uplink", "pose_wait", "render", "encode_queue", "encode", "pacing", "send", "network", "decode", "total"]
for stage in order:
    v = r["latency_ms"].get(stage, {"p50": 0, "p99": 0})
    print(f"  {stage:<14}{v['p50']:>8.1f}{v['p99']:>8.1f}")
room = r.get("room") or {}
if room:
    events = ", ".join(f"{e['user']} {e['kind']}" for e in room["events"])
    print(f"demo: room 'demo' (docs/rooms.md): members {room['members']}; events: {events}")
PY

# 5. The browser client, from the URL a person would open.
echo "demo: browser client at http://127.0.0.1:$control_port/ (user $user; password in $out/credentials)"
(umask 077 && printf '%s\n' "${KAIRO_BOOTSTRAP_ADMIN#*:}" >"$out/credentials")
if [ -d web/node_modules ] && command -v node >/dev/null; then
  KAIRO_PASSWORD=${KAIRO_BOOTSTRAP_ADMIN#*:} node web/test/demo_browser.mjs "http://127.0.0.1:$control_port/" "$user" \
    "$out/browser.png" 8
else
  echo "demo: no headless browser step (web/node_modules missing: scripts/setup.sh installs it)" >&2
  exit 1
fi
echo "demo: report $out/report.json, contact sheet $out/contact-sheet.png, browser $out/browser.png, logs in $out/"
if [ "$serve" = 1 ]; then
  echo "demo: serving until Ctrl-C: open http://127.0.0.1:$control_port/ in a browser on this machine"
  while kill -0 "${pids[1]}" 2>/dev/null; do sleep 1; done
fi

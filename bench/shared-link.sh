#!/usr/bin/env bash
# N sessions of one node sharing one impaired link (one `kairo netsim` relay), as the people of a room share
# a Wi-Fi access point: per session Mbit/s, frames delivered and lost, keyframes, latency p50/p99, and the
# share of the link used. Usage (from the project root, after scripts/build.sh):
#   bench/shared-link.sh --sessions 2 --rate 20 --delay 10 --duration 300 [--loss 2] [--size 256x256]
#                        [--fps 30] [--max-bits-per-pixel 0.5]
# Writes out/shared-link/<label>/ (reports, logs) and prints one line per session and a total.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

sessions=2 rate=0 loss=0 delay=10 duration=60 size=256x256 fps=30 bpp=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sessions) sessions=$2; shift ;;
    --rate) rate=$2; shift ;;
    --loss) loss=$2; shift ;;
    --delay) delay=$2; shift ;;
    --duration) duration=$2; shift ;;
    --size) size=$2; shift ;;
    --fps) fps=$2; shift ;;
    --max-bits-per-pixel) bpp=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
label="n${sessions}-rate${rate}-loss${loss}-delay${delay}-${size}-${duration}s"
out=$root/out/shared-link/$label
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d /tmp/kairo-shared.XXXXXX)
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

build/kairo devdb >"$work/db.url" 2>"$out/postgres.log" &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/db.url" ] && break; sleep 0.1; done
db_url=$(head -1 "$work/db.url")
control_port=$(free_port) node_port=$(free_udp_port) relay_port=$(free_udp_port)
export KAIRO_NODE_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export KAIRO_BOOTSTRAP_ADMIN="bench:bench-password-$RANDOM$RANDOM"
build/kairo control --db "$db_url" --listen "127.0.0.1:$control_port" 2>"$out/control.log" &
pids+=($!)
node_args=()
[ -n "$bpp" ] && node_args+=(--max-bits-per-pixel "$bpp")
build/kairo node --control "http://127.0.0.1:$control_port" --listen-udp "127.0.0.1:$node_port" \
  --max-sessions "$sessions" --log-level info "${node_args[@]}" 2>"$out/node.log" &
pids+=($!)
build/kairo netsim --listen "127.0.0.1:$relay_port" --forward "127.0.0.1:$node_port" --rate "$rate" \
  --loss "$loss" --delay "$delay" --seed 1 >"$out/netsim.json" 2>"$out/netsim.log" &
netsim_pid=$!
pids+=($netsim_pid)
for _ in $(seq 1 300); do grep -q "registered as id" "$out/node.log" 2>/dev/null && break; sleep 0.2; done

trace=../shared/data/head-traces/real-user2.jsonl
trace_args=()
[ -f "$trace" ] && trace_args=(--trace "$trace")
client_pids=()
for i in $(seq 1 "$sessions"); do
  KAIRO_PASSWORD=${KAIRO_BOOTSTRAP_ADMIN#*:} build/kairo client --control "http://127.0.0.1:$control_port" \
    --user bench --scene vr-room --size "$size" --fps "$fps" --duration "$duration" "${trace_args[@]}" \
    --via "127.0.0.1:$relay_port" --report "$out/report-$i.json" >/dev/null 2>"$out/client-$i.log" &
  client_pids+=($!)
done
failed=0
for pid in "${client_pids[@]}"; do wait "$pid" || failed=1; done
kill -TERM "$netsim_pid" 2>/dev/null || true
wait "$netsim_pid" 2>/dev/null || true
[ "$failed" = 0 ] || { echo "shared-link: a client failed (logs in $out)" >&2; tail -n 3 "$out"/client-*.log >&2; }

python3 - "$out" "$sessions" "$rate" "$label" "$duration" <<'PY'
import json, sys, glob
out, n, rate, label, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
total = 0.0
p99s = []
print(f"shared-link {label}")
for path in sorted(glob.glob(out + "/report-*.json")):
    r = json.load(open(path))
    mbps = r["average_bitrate_bps"] / 1e6
    total += mbps
    sent = max(1, r["frames_sent"])
    lat = r["latency_ms"].get("total", {"p50": 0, "p99": 0})
    worst = max((w["frames_lost"] for w in r.get("windows", [])), default=0)
    print(f"  session {path[-6]}: {mbps:6.2f} Mbit/s, {r['frames_decoded']}/{r['frames_sent']} decoded "
          f"({100.0 * r['frames_lost'] / sent:.2f} % lost, worst 10 s window {worst} lost), "
          f"{r['keyframes']} keyframes ({100.0 * r['keyframes'] / sent:.2f} %), "
          f"latency p50 {lat['p50']:.1f} / p99 {lat['p99']:.1f} ms")
# The link carries the wire rate (video, parity, retransmissions, headers): netsim's downstream bytes over
# the time the clients streamed (the relay also ran a few seconds before and after, so this is a floor).
wire = json.load(open(out + "/netsim.json"))["downstream"]["bytes"] * 8 / 1e6 / duration
share = f", wire {wire:.2f} Mbit/s = {100.0 * wire / rate:.0f} % of the {rate:g} Mbit/s link" if rate > 0 else ""
print(f"  total video {total:.2f} Mbit/s{share}")
PY

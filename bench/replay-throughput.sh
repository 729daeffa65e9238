#!/usr/bin/env bash
# Replay throughput (issue 18): frames/s of `kairo replay` at 2x512^2, one case alone and a 4-case suite
# with --jobs 1 and --jobs 2, for this build and (optionally) an earlier build as the peer, in the same
# invocation on the same machine. Usage (from the project root, after scripts/build.sh):
#   bench/replay-throughput.sh [--before OLD_KAIRO_BINARY] [--frames 90] [--size 512x512]
# Prints one line per run: binary, what, frames, seconds, frames/s.
set -euo pipefail
cd "$(dirname "$0")/.."
now=$(pwd)/build/kairo
before="" frames=90 size=512x512
while [ $# -gt 0 ]; do
  case "$1" in
    --before) before=$2; shift ;;
    --frames) frames=$2; shift ;;
    --size) size=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
work=$(mktemp -d /tmp/kairo-replay-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Four cases: two scenes x two synthetic head traces (seeded: every run replays the same poses).
"$now" trace --duration $((frames / 30 + 1)) --rate 30 --seed 1 --out "$work/a.jsonl"
"$now" trace --duration $((frames / 30 + 1)) --rate 30 --seed 2 --out "$work/b.jsonl"
cat > "$work/suite.json" <<JSON
{"name": "throughput", "defaults": {"size": "$size", "max_frames": $frames},
 "cases": [{"name": "room-a", "scene": "vr-room", "trace": "a.jsonl"},
           {"name": "room-b", "scene": "vr-room", "trace": "b.jsonl"},
           {"name": "stress-a", "scene": "stress", "trace": "a.jsonl"},
           {"name": "stress-b", "scene": "stress", "trace": "b.jsonl"}]}
JSON
run() {  # label binary out-dir args...
  local label=$1 binary=$2 out=$3
  shift 3
  local start end
  start=$(date +%s.%N)
  (cd "$(dirname "$binary")/.." && "$binary" replay "$@" --out "$out" --quiet > "$work/out.json" 2> "$work/err.txt") ||
    { echo "$label failed: $(tail -2 "$work/err.txt")" >&2; return 1; }
  end=$(date +%s.%N)
  python3 - "$label" "$start" "$end" "$out/summary.json" <<'PY'
import json, sys
label, start, end, summary = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
j = json.load(open(summary))
frames = sum(c.get("frames", 0) for c in j["cases"]) if "cases" in j else len(j["frames"])
print(f"{label:<40} frames {frames:>4}  {end - start:6.1f} s  {frames / (end - start):6.2f} frames/s")
PY
}
for binary in $before "$now"; do
  name=$([ "$binary" = "$now" ] && echo now || echo before)
  run "$name: one case (room-a)" "$binary" "$work/$name-single" --scene vr-room --trace "$work/a.jsonl" \
    --size "$size" --max-frames "$frames"
  run "$name: suite of 4, --jobs 1" "$binary" "$work/$name-j1" --suite "$work/suite.json" --jobs 1
  run "$name: suite of 4, --jobs 2" "$binary" "$work/$name-j2" --suite "$work/suite.json" --jobs 2
done

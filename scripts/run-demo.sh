#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds, and runs Kairo's main job.
# Until the node and client exist, the main job is the renderer's: the project's VR room rendered along a
# head-motion trace (the recorded one in ../shared when present, else a seeded synthetic one) into PNGs,
# with a summary line and a contact sheet of every 30th frame.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh

out=out/demo
rm -rf "$out" && mkdir -p "$out"
trace=../shared/data/head-traces/real-user1.jsonl
if [ -f "$trace" ]; then
  head -n 300 "$trace" > "$out/trace.jsonl"   # about 5 s of a real user's head motion
  echo "demo: rendering 300 samples of a recorded head trace"
else
  build/kairo trace --duration 5 --rate 60 --seed 1 --out "$out/trace.jsonl" >/dev/null
  echo "demo: rendering a 5 s synthetic head trace"
fi
build/kairo render --scene vr-room --size 512x512 --trace "$out/trace.jsonl" --out "$out/frames" | tee "$out/summary.json"
build/kairo contact-sheet --in "$out/frames" --every 30 --out "$out/contact-sheet.png" >/dev/null
echo "demo: frames in $out/frames, contact sheet $out/contact-sheet.png"

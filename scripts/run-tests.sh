#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test.
#   1. unit, renderer, golden-image, stereo-geometry and CLI tests (ctest, Vulkan validation on);
#   2. the 1000-frame soak test from an AddressSanitizer + LeakSanitizer build;
#   3. the threaded transport, node logic and control plane tests from a ThreadSanitizer + UBSan build;
#   4. a bounded libFuzzer run of the datagram parsers;
#   5. a formatting check (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup.sh
scripts/build.sh

echo "== tests"
(cd build && ctest --output-on-failure --parallel 2 --timeout 600)
# Skipped tests are counted and each says why (GTEST_SKIP's message), so that a skip is never silent.
python3 - build/Testing/Temporary/LastTest.log <<'PY'
import re, sys
log = open(sys.argv[1], errors="replace").read()
skips = {}
for m in re.finditer(r"^[^\n]*: Skipped\n(.*?)\n\[  SKIPPED \] (\S+) \(", log, re.S | re.M):
    skips[m.group(2)] = (m.group(1).splitlines() or [""])[0]
print(f"== skipped tests: {len(skips)}")
for name, reason in skips.items():
    print(f"   {name}: {reason or '(no reason given)'}")
PY

echo "== AddressSanitizer soak (1000 frames)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKAIRO_SANITIZE=ON -DKAIRO_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan --parallel "$(nproc)" --target kairo_render_soak_test kairo_scenes
# Mesa's llvmpipe and LLVM keep a few process-lifetime allocations; those, and only those, are suppressed.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0" \
  build-asan/tests/kairo_render_soak_test

echo "== ThreadSanitizer + UBSan: transport, node logic, control plane"
# The threaded code under TSan: the UDP transport (io threads, shared-socket inbox), the relay, rooms and
# the quality logic, the control plane's HTTP server and database pool. Tests whose assertion is a timing
# threshold (frames on time under loss, an estimate within a deadline) run in the normal build above: TSan
# slows every memory access, so there they would measure TSan.
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKAIRO_TSAN=ON -DKAIRO_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan --parallel "$(nproc)" --target kairo_streaming_tests kairo_stream_loopback_tests \
  kairo_node_logic_tests kairo_control_tests kairo
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
build-tsan/tests/kairo_streaming_tests --gtest_brief=1
build-tsan/tests/kairo_stream_loopback_tests --gtest_brief=1 \
  --gtest_filter='-*on_time*:*loss_in_bursts*:*rate_cap*'
build-tsan/tests/kairo_node_logic_tests --gtest_brief=1
build-tsan/tests/kairo_control_tests --gtest_brief=1
unset TSAN_OPTIONS

echo "== libFuzzer: datagram and message parsers (bounded)"
mkdir -p build-fuzz
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I. -isystem /usr/include/isa-l \
  tests/fuzz/datagram_fuzzer.cpp streaming/uplink.cpp streaming/wire.cpp streaming/messages.cpp streaming/room_messages.cpp streaming/datagram_crypto.cpp \
  streaming/frame_assembler.cpp streaming/frame_metadata.cpp streaming/reed_solomon.cpp core/error.cpp core/names.cpp -lsodium -lisal -o build-fuzz/datagram_fuzzer
mkdir -p build-fuzz/corpus
build-fuzz/datagram_fuzzer -max_total_time="${KAIRO_FUZZ_SECONDS:-60}" -max_len=1500 -rss_limit_mb=2048 \
  -print_final_stats=1 build-fuzz/corpus 2>&1 | tail -n 5

echo "== formatting"
files=$(git ls-files '*.cpp' '*.hpp')
if ! clang-format --dry-run --Werror $files; then
  echo "formatting differs from .clang-format: run clang-format -i on the files above" >&2
  exit 1
fi
echo "all tests passed"

#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test.
#   1. unit, renderer, golden-image, stereo-geometry, end-to-end, browser and CLI tests (ctest, Vulkan
#      validation on), then the `perf` label (timing thresholds, reported with their measured values);
#   2. the 1000-frame soak test from an AddressSanitizer + LeakSanitizer build;
#   3. the threaded transport, node logic and control plane tests from a ThreadSanitizer + UBSan build;
#   4. a bounded libFuzzer run of every parser (datagrams, frame assembly, traces, HTTP routes, scene files);
#   5. a formatting check (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup.sh
scripts/build.sh

echo "== tests"
(cd build && ctest --output-on-failure --parallel 2 --timeout 600 --label-exclude perf)
cp build/Testing/Temporary/LastTest.log build/Testing/Temporary/LastTest-all.log
# Skipped tests are counted and each says why (GTEST_SKIP's message), so that a skip is never silent.
python3 - build/Testing/Temporary/LastTest-all.log <<'PY'
import re, sys
log = open(sys.argv[1], errors="replace").read()
skips = {}
for m in re.finditer(r"^[^\n]*: Skipped\n(.*?)\n\[  SKIPPED \] (\S+) \(", log, re.S | re.M):
    skips[m.group(2)] = (m.group(1).splitlines() or [""])[0]
print(f"== skipped tests: {len(skips)}")
for name, reason in skips.items():
    print(f"   {name}: {reason or '(no reason given)'}")
PY

echo "== perf: timing thresholds on this shared machine (reported with their values; KAIRO_PERF_STRICT=1 gates)"
# Frames on time under loss, how fast the estimate follows a cap, how evenly sessions share a link, whether a
# lossy session slows another: real sockets and real time on two shared cores. They run alone, after the
# correctness tests, and each prints what it measured; the correctness of loss recovery itself is held by the
# seeded simulated channel above, which gives the same counts every run.
perf_status=0
(cd build && ctest --output-on-failure --timeout 600 --label-regex perf) || perf_status=$?
grep -h "^perf: " build/Testing/Temporary/LastTest.log | sed 's/^/   /' || true
if [ "$perf_status" -ne 0 ]; then
  echo "perf: a timing threshold was missed (values above)" >&2
  [ "${KAIRO_PERF_STRICT:-0}" = 1 ] && exit 1
fi

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
# The simulated channel and the FEC policy's Monte Carlo are single-threaded and deterministic: nothing for
# TSan to check, and 10-20x slower under it (the simulations alone took over 13 minutes).
build-tsan/tests/kairo_streaming_tests --gtest_brief=1 --gtest_filter='-SimulatedChannel.*:FecPolicy.*'
build-tsan/tests/kairo_stream_loopback_tests --gtest_brief=1 \
  --gtest_filter='-*Perf.*:*on_time*:*loss_in_bursts*'
build-tsan/tests/kairo_node_logic_tests --gtest_brief=1
build-tsan/tests/kairo_control_tests --gtest_brief=1
unset TSAN_OPTIONS

echo "== libFuzzer: one target per parser, seeded from tests/fuzz/corpus (bounded)"
# Built with clang (-DKAIRO_FUZZ=ON: the libraries they reach carry the sanitizers' and libFuzzer's
# instrumentation). Each target's committed seeds are read-only input; what the run finds goes to
# build-fuzz/corpus/<target>. The time budget (KAIRO_FUZZ_SECONDS, 90 s by default) is split evenly.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER=clang -DKAIRO_FUZZ=ON -DKAIRO_BUILD_TESTS=OFF -DKAIRO_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --parallel "$(nproc)" --target kairo_fuzzers
# scene_file_fuzzer is built but runs by hand: within seconds to minutes it finds memory-safety bugs inside
# Debian's assimp 5.2.5 (a heap-buffer-overflow in its glTF importer, an allocation past 2 GB from a 1 KB
# file; tests/fuzz/assimp-findings/), which Kairo cannot fix and which would fail CI at random. Scene files
# from outside are to be loaded in a sandboxed process with memory and time limits (#16's uploads).
targets=(datagram authenticated_datagram frame_assembler trace_line http_route gltf_extensions)
seconds=$(( ${KAIRO_FUZZ_SECONDS:-90} / ${#targets[@]} ))
for target in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$target"
  seeds=()
  [ -d "tests/fuzz/corpus/$target" ] && seeds=("tests/fuzz/corpus/$target")
  echo "-- $target: ${seconds} s"
  if ! LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0" \
    "build-fuzz/tests/fuzz/${target}_fuzzer" -max_total_time="$seconds" -max_len=32768 -rss_limit_mb=2048 \
    -timeout=20 -print_final_stats=1 -artifact_prefix="build-fuzz/$target-" \
    "build-fuzz/corpus/$target" "${seeds[@]}" >"build-fuzz/$target.log" 2>&1; then
    tail -n 40 "build-fuzz/$target.log" >&2
    echo "fuzzer $target found a failure (build-fuzz/$target.log; the input is saved as build-fuzz/$target-*)" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "build-fuzz/$target.log" | tr '\n' ' '
  echo
done

echo "== formatting"
files=$(git ls-files '*.cpp' '*.hpp')
if ! clang-format --dry-run --Werror $files; then
  echo "formatting differs from .clang-format: run clang-format -i on the files above" >&2
  exit 1
fi
echo "all tests passed"

// libFuzzer target: frame assembly from a sequence of (already decrypted) video fragments, with a fresh
// assembler per input so that no state leaks between inputs. The input is a list of chunks, each a two-byte
// little-endian length, a one-byte clock step (ms) and that many payload bytes (tests/fuzz/make_seeds.cpp).
// Invariants: the assembler hands out frames in increasing id order, each no larger than the fragments given
// could carry (a frame of m data fragments needs m fragments, data or parity), and never holds more frames
// than its bound; asking for missing fragments and expiring frames never crashes.
#include <cstdint>
#include <span>

#include "streaming/frame_assembler.hpp"

using namespace kairo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FrameAssembler assembler(1112, 50'000'000, 8);
  int64_t now = 0;
  size_t fragments = 0;
  uint64_t last_id = 0;
  bool popped_any = false;
  for (size_t at = 0; at + 3 <= size;) {
    const size_t length = size_t(data[at]) | size_t(data[at + 1]) << 8;
    now += int64_t(data[at + 2]) * 1'000'000;
    at += 3;
    if (at + length > size) break;
    assembler.add(std::span<const uint8_t>(data + at, length), now);
    ++fragments;
    at += length;
    assembler.missing(now, 0, 0, [](uint64_t, int, int) {});
    for (const uint64_t unseen : assembler.unseen(now, 0, 0))
      if (unseen < assembler.next_frame_id()) __builtin_trap();  // delivered or given up: never asked for
    assembler.expire(now);
    while (const AssembledFrame* frame = assembler.pop()) {
      if (popped_any && frame->frame_id <= last_id) __builtin_trap();
      if (frame->data.size() > fragments * 1112) __builtin_trap();
      last_id = frame->frame_id;
      popped_any = true;
    }
    (void)assembler.take_lost();
  }
  return 0;
}

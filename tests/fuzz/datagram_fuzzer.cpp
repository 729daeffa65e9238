// libFuzzer target for everything that parses bytes from the network: the datagram header and its
// authentication, the video fragment header, every feedback message, and the frame assembler fed with
// arbitrary (already "decrypted") payloads. Built with clang -fsanitize=fuzzer,address by
// scripts/run-tests.sh and run for a bounded time; any crash, leak or sanitizer report fails CI.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "streaming/datagram_crypto.hpp"
#include "streaming/frame_assembler.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/wire.hpp"

using namespace kairo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const SessionKey key = SessionKey::from_hex(std::string(64, '7'));
  static DatagramOpener opener(key, 1, wire::Direction::kServerToClient);
  static FrameAssembler assembler(1112, 50'000'000, 8);
  static int64_t now = 0;
  const std::span<const uint8_t> input(data, size);

  wire::Header header;
  std::array<uint8_t, wire::kMaxDatagram> plain{};
  size_t plain_size = 0;
  (void)opener.open(input, header, plain, plain_size);
  (void)wire::read_header(input);
  (void)wire::read_video_fragment(input);
  (void)wire::read_pose(input);
  (void)wire::read_nack(input);
  (void)wire::read_report(input);
  (void)wire::read_ping(input);
  (void)wire::read_pong(input);
  (void)wire::read_keyframe_request(input);
  (void)read_frame_metadata(input);
  (void)wire::read_hand(input);
  if (const auto room = wire::read_room_state(input)) {
    // What parses must write back to the same bytes (one encoding per state).
    std::array<uint8_t, wire::RoomStateMessage::kMaxSize> again{};
    const size_t n = wire::write(*room, again);
    if (n != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
  }

  now += 1'000'000;
  assembler.add(input, now);
  assembler.missing(now, 0, 0, [](uint64_t, int, int) {});
  assembler.expire(now);
  while (assembler.pop() != nullptr) {
  }
  (void)assembler.take_lost();
  return 0;
}

// libFuzzer target for raw bytes from the network before authentication: the datagram header and the
// opener's refusal path, the video fragment header, every message parser, names and log fields. What lies
// behind authentication has its own target (authenticated_datagram_fuzzer.cpp, which seals its input), and
// so has frame assembly (frame_assembler_fuzzer.cpp, a fresh assembler per input). Built with clang
// -fsanitize=fuzzer,address,undefined by scripts/run-tests.sh and run for a bounded time; any crash, leak or
// sanitizer report fails CI.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "core/names.hpp"
#include "streaming/datagram_crypto.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/uplink.hpp"
#include "streaming/wire.hpp"

using namespace kairo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const SessionKey key = SessionKey::from_hex(std::string(64, '7'));
  DatagramOpener opener(key, 1, wire::Direction::kServerToClient);  // per input: no state between inputs
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
  // The transport seam: an uplink message that parses writes back to the same bytes. A pose datagram is a
  // batch (wire::PoseBatch): the batch writes back whole, and the generic reader gives its newest pose.
  for (const auto type : {wire::PacketType::kHand, wire::PacketType::kInput}) {
    if (const auto message = read_uplink(type, input)) {
      std::array<uint8_t, kMaxUplinkBytes> again{};
      const size_t n = write_uplink(*message, again);
      if (packet_type_of(*message) != type || n != size) __builtin_trap();
    }
  }
  if (const auto batch = wire::read_pose_batch(input)) {
    std::array<uint8_t, wire::PoseBatch::kMaxPoses * wire::PoseMessage::kSize> again{};
    if (wire::write(*batch, again) != size) __builtin_trap();
    const auto newest = read_uplink(wire::PacketType::kPose, input);
    if (!newest || std::get<wire::PoseMessage>(*newest).pose_id != batch->poses[batch->count - 1].pose_id)
      __builtin_trap();
  } else if (read_uplink(wire::PacketType::kPose, input)) {
    __builtin_trap();  // the generic reader accepts no more than the batch reader
  }
  if (const auto path = wire::read_path(input)) {
    std::array<uint8_t, wire::PathMessage::kSize> again{};
    if (wire::write(*path, again) != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
  }
  // Names and log fields (core/names.hpp): whatever the bytes, the escaped form is printable UTF-8 with no
  // control character, and a name the rule accepts is printed unchanged (but for backslashes, doubled so
  // that an escape in the log is unambiguous).
  const std::string_view text(reinterpret_cast<const char*>(data), std::min<size_t>(size, 256));
  const std::string escaped = escape_for_log(text);
  if (!escaped.empty() && name_problem(escaped, 4096)) {
    const auto problem = name_problem(escaped, 4096);
    if (*problem != "starts or ends with a space") __builtin_trap();
  }
  if (!name_problem(text, 256) && text.find('\\') == std::string_view::npos && escaped != text)
    __builtin_trap();
  if (const auto room = wire::read_room_state(input)) {
    // What parses must write back to the same bytes (one encoding per state).
    std::array<uint8_t, wire::RoomStateMessage::kMaxSize> again{};
    const size_t n = wire::write(*room, again);
    if (n != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
  }

  return 0;
}

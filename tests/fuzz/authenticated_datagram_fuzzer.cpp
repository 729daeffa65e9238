// libFuzzer target: the code behind datagram authentication. Random bytes never pass ChaCha20-Poly1305, so a
// fuzzer that feeds them to the opener only ever reaches the refusal; this one seals its input with the test
// key first (first byte: the packet type, modulo the types there are; the rest: the payload), so every input
// is opened and dispatched as a node or client would: the header read back, the payload handed to its parser,
// the replay window moved. Invariants: what was sealed opens to exactly the same type and payload; the same
// datagram twice is refused as a replay; any application message that parses writes back to the same bytes.
#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include "streaming/datagram_crypto.hpp"
#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/uplink.hpp"
#include "streaming/wire.hpp"

using namespace kairo;

// A message that parsed must write back to exactly the bytes it was read from (one encoding per message).
static void trap_unless_written_back(size_t written, std::span<const uint8_t> again,
                                     std::span<const uint8_t> original) {
  if (written != original.size() || std::memcmp(again.data(), original.data(), original.size()) != 0)
    __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > wire::kMaxDatagram - wire::kHeaderSize - wire::kTagSize) return 0;
  static const SessionKey key = SessionKey::from_hex(std::string(64, '7'));
  // A fresh pair per input: the replay window's state never leaks from one input to the next.
  DatagramSealer sealer(key, 1, wire::Direction::kClientToServer);
  DatagramOpener opener(key, 1, wire::Direction::kClientToServer);
  const auto type = wire::PacketType(1 + data[0] % 12);  // every type the header may carry
  const std::span<const uint8_t> payload(data + 1, size - 1);
  std::array<uint8_t, wire::kMaxDatagram> datagram{};
  const size_t n = sealer.seal(type, payload, datagram);
  const std::span<const uint8_t> sealed(datagram.data(), n);

  wire::Header header;
  std::array<uint8_t, wire::kMaxDatagram> plain{};
  size_t plain_size = 0;
  if (opener.open(sealed, header, plain, plain_size) != OpenResult::kOk) __builtin_trap();
  if (header.type != type || plain_size != payload.size() ||
      std::memcmp(plain.data(), payload.data(), payload.size()) != 0)
    __builtin_trap();
  if (opener.open(sealed, header, plain, plain_size) != OpenResult::kReplayed) __builtin_trap();
  // A flipped bit anywhere is refused.
  datagram[n / 2] ^= 0x20;
  if (opener.open(sealed, header, plain, plain_size) == OpenResult::kOk) __builtin_trap();

  // Dispatched as the receiving side does: a pose datagram as a batch (wire::PoseBatch), written back whole.
  if (type == wire::PacketType::kPose) {
    if (const auto batch = wire::read_pose_batch(payload)) {
      std::array<uint8_t, wire::PoseBatch::kMaxPoses * wire::PoseMessage::kSize> again{};
      trap_unless_written_back(wire::write(*batch, again), again, payload);
    }
  } else if (const auto message = read_uplink(type, payload)) {
    std::array<uint8_t, kMaxUplinkBytes> again{};
    trap_unless_written_back(write_uplink(*message, again), again, payload);
  }
  switch (type) {
    case wire::PacketType::kReport:
      (void)wire::read_report(payload);
      break;
    case wire::PacketType::kNack:
      (void)wire::read_nack(payload);
      break;
    case wire::PacketType::kPing:
      (void)wire::read_ping(payload);
      break;
    case wire::PacketType::kPong:
      (void)wire::read_pong(payload);
      break;
    case wire::PacketType::kKeyframeRequest:
      (void)wire::read_keyframe_request(payload);
      break;
    case wire::PacketType::kVideo:
      (void)wire::read_video_fragment(payload);
      break;
    case wire::PacketType::kRoomState:
      if (const auto room = wire::read_room_state(payload)) {
        std::array<uint8_t, wire::RoomStateMessage::kMaxSize> again{};
        trap_unless_written_back(wire::write(*room, again), again, payload);
      }
      break;
    default:
      break;
  }
  return 0;
}

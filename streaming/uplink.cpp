#include "streaming/uplink.hpp"

#include <stdexcept>

namespace kairo {

wire::PacketType packet_type_of(const UplinkMessage& message) {
  return std::visit(Overloaded{[](const wire::PoseMessage&) { return wire::PacketType::kPose; },
                               [](const wire::HandMessage&) { return wire::PacketType::kHand; },
                               [](const wire::InputMessage&) { return wire::PacketType::kInput; }},
                    message);
}

std::optional<UplinkMessage> read_uplink(wire::PacketType type, std::span<const uint8_t> payload) {
  switch (type) {
    case wire::PacketType::kPose:  // a batch: its newest pose (StreamServer delivers each, oldest first)
      if (auto m = wire::read_pose_batch(payload)) return UplinkMessage(m->poses[m->count - 1]);
      return std::nullopt;
    case wire::PacketType::kHand:
      if (auto m = wire::read_hand(payload)) return UplinkMessage(*m);
      return std::nullopt;
    case wire::PacketType::kInput:
      if (auto m = wire::read_input(payload)) return UplinkMessage(*m);
      return std::nullopt;
    case wire::PacketType::kVideo:
    case wire::PacketType::kReport:
    case wire::PacketType::kNack:
    case wire::PacketType::kPing:
    case wire::PacketType::kPong:
    case wire::PacketType::kKeyframeRequest:
    case wire::PacketType::kRoomState:
    case wire::PacketType::kPathChallenge:
    case wire::PacketType::kPathResponse:
      return std::nullopt;  // not an application message from the client
  }
  return std::nullopt;
}

size_t write_uplink(const UplinkMessage& message, std::span<uint8_t> out) {
  if (out.size() < kMaxUplinkBytes) throw std::length_error("uplink buffer too small");
  return std::visit([&](const auto& m) { return wire::write(m, out); }, message);
}

}  // namespace kairo

namespace kairo {
static_assert(wire::PoseMessage::kSize <= kMaxUplinkBytes && wire::HandMessage::kSize <= kMaxUplinkBytes &&
              wire::InputMessage::kSize <= kMaxUplinkBytes);
}  // namespace kairo

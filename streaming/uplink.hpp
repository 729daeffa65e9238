#pragma once
// The seam between a transport and a session. The application's messages from the client are one closed
// set (`UplinkMessage`); a transport (the UDP stream today, a browser's data channel next) decodes them and
// hands each to the session's one mailbox (`UplinkMailbox::deliver`), and the session handles them with an
// exhaustive std::visit (see `Overloaded`): a new message type without a handler does not compile. Transport
// messages (NACKs, reports, pings, path validation) stay inside the transport and never reach a session.
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/wire.hpp"

namespace kairo {

using UplinkMessage = std::variant<wire::PoseMessage, wire::HandMessage, wire::InputMessage>;

// The wire type an uplink message travels as, and back: one table for both directions.
wire::PacketType packet_type_of(const UplinkMessage& message);
// Decodes the payload of an application packet type; nullopt for a refused payload or a type that is not an
// uplink message (the caller counts it).
std::optional<UplinkMessage> read_uplink(wire::PacketType type, std::span<const uint8_t> payload);
// Encodes into `out` (at least kMaxUplinkBytes); returns the size.
constexpr size_t kMaxUplinkBytes = 64;
size_t write_uplink(const UplinkMessage& message, std::span<uint8_t> out);

// Where a session receives its client's messages. Called on the transport's thread, in arrival order; an
// implementation that hands them to another thread keeps its own bounded queue with an explicit drop policy.
class UplinkMailbox {
 public:
  virtual ~UplinkMailbox() = default;
  virtual void deliver(const UplinkMessage& message, int64_t received_ns) = 0;
};

// std::visit(Overloaded{[](const A&) {...}, [](const B&) {...}}, v): a lambda per alternative, and a
// compile error for a missing one.
template <typename... Handlers>
struct Overloaded : Handlers... {
  using Handlers::operator()...;
};
template <typename... Handlers>
Overloaded(Handlers...) -> Overloaded<Handlers...>;

}  // namespace kairo

#pragma once
// The UDP stream as a session's transport: a StreamServer on the node's shared socket, registered with the
// UdpMux for its session id while it lives.
#include <memory>

#include "streaming/session_transport.hpp"

namespace kairo {

class UdpMux;

// Throws kairo::Error (invalid input) when another session on the mux has the same datagram id.
std::unique_ptr<SessionTransport> make_udp_session_transport(UdpMux& mux, const TransportSetup& setup);

}  // namespace kairo

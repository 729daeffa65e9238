#include "streaming/udp_session_transport.hpp"

#include "core/error.hpp"
#include "streaming/stream_server.hpp"
#include "streaming/udp_mux.hpp"

namespace kairo {
namespace {

class UdpSessionTransport final : public SessionTransport {
 public:
  UdpSessionTransport(UdpMux& mux, const TransportSetup& setup)
      : mux_(mux),
        session_id_(setup.session_id),
        server_(StreamServerConfig{.listen = {},
                                   .session_id = setup.session_id,
                                   .key = setup.key,
                                   .fps = setup.fps,
                                   .initial_bitrate_bps = setup.initial_bitrate_bps,
                                   .shared_socket_fd = mux.socket_fd(),
                                   .mailbox = setup.mailbox}) {
    if (!mux_.add(session_id_, &server_))
      throw_invalid_input("another session on this node has the same datagram id");
  }
  ~UdpSessionTransport() override { mux_.remove(session_id_); }  // no datagram reaches the server after this

  void send_frame(const FrameInfo& info, std::span<const uint8_t> metadata,
                  std::span<const uint8_t> access_unit) override {
    server_.send_frame(info, metadata, access_unit);
  }
  void send_room_state(std::span<const uint8_t> message) override { server_.send_room_state(message); }
  std::optional<RecoveryRequest> take_recovery_request() override {
    bool speculative = false;
    if (const std::optional<uint64_t> from = server_.take_recovery_request(&speculative))
      return RecoveryRequest{.first_lost = from, .speculative = speculative};
    return std::nullopt;
  }
  TransportFeedback feedback() const override {
    const StreamServerStats s = server_.stats();
    return {.target_bitrate_bps = s.target_bitrate_bps,
            .loss = s.loss,
            .rtt_ms = s.rtt_ms,
            .client_decode_ms = s.client_decode_ms,
            .last_client_ns = s.last_client_datagram_ns,
            .display_phase_error_ns = s.display_phase_error_ns};
  }
  TransportCounters counters() const override {
    const StreamServerStats s = server_.stats();
    return {.packets_sent = s.datagrams,
            .retransmitted = s.retransmitted,
            .fec_packets = s.fec_datagrams,
            .client_lost = s.client_fragments_lost,
            .rejected = s.rejected,
            .inbox_dropped = s.inbox_dropped,
            .path_challenges = s.path_challenges,
            .paths_validated = s.paths_validated,
            .amplification_limited = s.amplification_limited,
            .retransmissions_suppressed = s.retransmissions_suppressed,
            .keyframe_requests = s.keyframe_requests,
            .keyframe_requests_answered = s.keyframe_requests_answered};
  }

 private:
  UdpMux& mux_;
  uint32_t session_id_;
  StreamServer server_;
};

}  // namespace

std::unique_ptr<SessionTransport> make_udp_session_transport(UdpMux& mux, const TransportSetup& setup) {
  return std::make_unique<UdpSessionTransport>(mux, setup);
}

}  // namespace kairo

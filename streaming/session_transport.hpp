#pragma once
// What a session pipeline needs from a transport, and nothing more: send a frame (its metadata block and
// access unit), send the room's state, tell the pipeline what the link carries and whether the client asked
// to recover from a loss, and count what it did. The client's messages come the other way through the
// session's mailbox (streaming/uplink.hpp). The UDP stream implements it
// (streaming/udp_session_transport.hpp); a browser transport implements the same interface without touching
// the pipeline.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "streaming/datagram_crypto.hpp"
#include "streaming/frame_packetizer.hpp"
#include "streaming/uplink.hpp"

namespace kairo {

// The client lost a frame (or could not decode it): recover from `first_lost` (the encoder invalidates its
// references from there, where it can: VideoEncoder::invalidate_from), or, without it, with a keyframe (a
// browser's WebRTC stack waits for one after any loss).
struct RecoveryRequest {
  std::optional<uint64_t> first_lost{};
  // Only NACKed (the frame may yet arrive): repair where the encoder can invalidate, never with a keyframe.
  bool speculative = false;
};

struct TransportFeedback {
  int64_t target_bitrate_bps = 0;  // video bits per second the link carries now (the encoder's target)
  double loss = 0;                 // fraction of packets lost, smoothed
  double rtt_ms = 0;
  double client_decode_ms = 0;  // the client's decode time, as it reports
  int64_t last_client_ns = 0;   // steady clock: the client's last authenticated message; 0: none yet
  // How far before the middle of its display slots the client's frames become ready (0: not reported): the
  // render clock moves by it.
  int64_t display_phase_error_ns = 0;
};

// Counters since the transport started (the pipeline exports their increments as node metrics). A transport
// without some of them (no datagrams of its own to authenticate, say) leaves them 0.
struct TransportCounters {
  uint64_t packets_sent = 0, retransmitted = 0, fec_packets = 0, client_lost = 0;
  std::array<uint64_t, 6> rejected{};  // by OpenResult
  uint64_t inbox_dropped = 0, path_challenges = 0, paths_validated = 0, amplification_limited = 0,
           retransmissions_suppressed = 0;
  // Keyframe requests received, and those a keyframe sent after the loss had answered already.
  uint64_t keyframe_requests = 0, keyframe_requests_answered = 0;
  // Frames handed over and not put on the wire (a browser transport before it is connected, or while it
  // waits for a keyframe to start from).
  uint64_t frames_dropped = 0;
};

class SessionTransport {
 public:
  virtual ~SessionTransport() = default;
  // Thread-safe. The frame is `metadata` followed by `access_unit`; the newest frame replaces one not yet
  // sent (the drop policy).
  virtual void send_frame(const FrameInfo& info, std::span<const uint8_t> metadata,
                          std::span<const uint8_t> access_unit) = 0;
  // Thread-safe. A wire::RoomStateMessage; a newer one replaces one not yet sent.
  virtual void send_room_state(std::span<const uint8_t> message) = 0;
  virtual std::optional<RecoveryRequest> take_recovery_request() = 0;
  virtual TransportFeedback feedback() const = 0;
  virtual TransportCounters counters() const = 0;
};

// How a node makes a session's transport.
struct TransportSetup {
  uint32_t session_id = 0;  // the 32-bit id datagrams carry (udp_session_id of the control plane's id)
  SessionKey key;
  int fps = 90;
  int64_t initial_bitrate_bps = 8'000'000;
  UplinkMailbox* mailbox = nullptr;  // outlives the transport
  int max_picture_bytes = 0;         // an uncompressed coded picture (both eyes, NV12): bounds a frame's size
};
using TransportFactory = std::function<std::unique_ptr<SessionTransport>(const TransportSetup&)>;

}  // namespace kairo

#pragma once
// Node side of one session's UDP stream: paces each frame's fragments at the link's shown capacity,
// adds Reed-Solomon parity sized by FecPolicy from the loss the client reports, retransmits on NACK while
// the fragment is still kept, answers clock pings, and turns receiver reports into a target bitrate
// (GCC: the client's delay-based estimate capped by loss). Keyframe requests come back; the application's
// messages (poses, hands, input) go to the session's mailbox (streaming/uplink.hpp).
// Boost.Asio stays inside stream_server.cpp; one thread per session, no lock shared between sessions.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "streaming/bandwidth_estimator.hpp"
#include "streaming/datagram_crypto.hpp"
#include "streaming/frame_packetizer.hpp"
#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/uplink.hpp"

namespace kairo {

struct StreamServerConfig {
  std::string listen = "127.0.0.1:0";
  uint32_t session_id = 1;
  SessionKey key;
  int fps = 90;
  double pacing_fraction = 0.5;  // a frame's datagrams are spread over this share of the frame interval
  size_t mtu = wire::kDefaultMtu;
  int64_t initial_bitrate_bps = 10'000'000;
  // Video bitrate bounds for the target handed to the encoder (the node's, so no caller restates them).
  int64_t min_bitrate_bps = 200'000;
  int64_t max_bitrate_bps = 200'000'000;
  // A fragment is retransmitted again only after max(3/4 RTT, this): the client repeats a NACK once an RTT.
  int64_t retransmit_min_interval_ns = 5'000'000;
  double assumed_loss = 0.03;  // FEC protection until reports arrive (then decays towards the measured loss)
  // >= 0: no socket of its own. Datagrams arrive through deliver() (a UdpMux routes them by session id) and
  // leave through this shared socket, so that every session of a node is reachable at one address.
  int shared_socket_fd = -1;
  // The session's mailbox (streaming/uplink.hpp): every authenticated application message (pose, hand,
  // input), on the session's network thread, in arrival order. None: they are counted and dropped.
  UplinkMailbox* mailbox = nullptr;
  // Fault injection for tests: every datagram of this frame (data, parity, retransmissions) is withheld, as
  // if the network had lost them all.
  std::optional<uint64_t> withhold_frame{};
};

struct StreamServerStats {
  uint64_t frames = 0, datagrams = 0, video_bytes = 0;
  uint64_t fec_datagrams = 0, fec_bytes = 0, retransmitted = 0, retransmitted_bytes = 0;
  uint64_t inbox_dropped = 0;  // shared-socket mode: datagrams dropped because the session fell behind
  // Path validation: challenges sent to new client addresses, addresses validated, challenges withheld by
  // the 3x amplification limit; retransmissions refused as duplicates or over the budget.
  uint64_t path_challenges = 0, paths_validated = 0, amplification_limited = 0,
           retransmissions_suppressed = 0;
  uint64_t nacks = 0, keyframe_requests = 0, reports = 0, pings = 0, room_states = 0;
  uint64_t keyframe_requests_answered = 0;  // for a loss a keyframe sent since then already repaired
  // NACKs naming no fragment (the whole frame never arrived); recoveries made due by a NACK (speculative).
  uint64_t whole_frame_nacks = 0, recoveries_at_risk = 0;
  std::array<uint64_t, std::variant_size_v<UplinkMessage>> uplink{};  // delivered, by UplinkMessage index
  uint64_t unexpected = 0;  // authenticated but not for the server (its own kinds) or a refused payload
  std::array<uint64_t, 6> rejected{};  // by OpenResult
  int64_t target_bitrate_bps = 0;
  double loss = 0, burst_mean = 1;
  int64_t receiver_estimate_bps = 0;
  double wire_per_video = 1;      // bytes on the wire per byte of video (parity, retransmissions, headers)
  int64_t link_capacity_bps = 0;  // the client's packet trains (0: the link kept up with the sender)
  int64_t pacing_bps = 0;         // the rate the last frame's fragments left at
  int64_t display_phase_error_ns =
      0;  // the client's frames, against where they should be in its display slots
  double client_decode_ms = 0, rtt_ms = 0;  // from the latest receiver report
  uint64_t client_frames_lost = 0, client_frames_recovered = 0, client_fragments_lost = 0;
  int64_t last_client_datagram_ns = 0;  // steady clock; 0: none yet
};

class StreamServer {
 public:
  explicit StreamServer(const StreamServerConfig& config);
  ~StreamServer();
  uint16_t port() const;  // 0 in shared-socket mode
  // Shared-socket mode: one received datagram and its sender (a sockaddr of `from_length` bytes). Copied into
  // a fixed inbox of 64 datagrams and handled on the session's thread; when the inbox is full the datagram
  // is dropped (counted): one slow session never blocks the node's receive thread.
  void deliver(std::span<const uint8_t> datagram, const void* from, size_t from_length);
  bool connected() const;  // a client address has echoed a path challenge: the stream goes there
  // Thread-safe. Copies the access unit; its fragments go out paced on the session's thread.
  void send_frame(const FrameInfo& info, std::span<const uint8_t> access_unit);
  // The frame is `prefix` followed by `access_unit` (the node's FrameMetadata in front of the encoder's
  // output), gathered in the one copy the hand-off makes anyway.
  void send_frame(const FrameInfo& info, std::span<const uint8_t> prefix,
                  std::span<const uint8_t> access_unit);
  // Thread-safe. Sends a room state (wire::RoomStateMessage bytes) from the session's thread; a newer one
  // replaces one not yet sent.
  void send_room_state(std::span<const uint8_t> message);
  int64_t target_bitrate_bps() const;
  // The first frame the client lost, once per due recovery (streaming/keyframe_requests.hpp); `speculative`
  // (if given): only a NACKed frame's, repair it where the encoder can but make no keyframe for it.
  std::optional<uint64_t> take_recovery_request(bool* speculative = nullptr);
  // For senders that recover with keyframes only: a keyframe is due (speculative recoveries are not).
  bool take_keyframe_request() {
    bool speculative = false;
    return take_recovery_request(&speculative).has_value() && !speculative;
  }
  StreamServerStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo

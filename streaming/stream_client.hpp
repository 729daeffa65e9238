#pragma once
// Client side of a session's UDP stream (the reference client and the tests use it): authenticates and
// decrypts, reassembles with FEC, NACKs what is missing while the frame can still make its deadline, hands
// complete frames over in order, asks for a keyframe when a frame is lost, reports every 50 ms (loss, burst
// length, jitter, delay trend, delay-based bandwidth estimate), keeps the clocks in sync, and sends poses.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "streaming/clock_sync.hpp"
#include "streaming/datagram_crypto.hpp"
#include "streaming/frame_assembler.hpp"
#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"

namespace kairo {

struct StreamClientConfig {
  std::string server;  // HOST:PORT (or a relay in front of it)
  uint32_t session_id = 1;
  SessionKey key;
  int fps = 90;
  int64_t deadline_ns =
      0;  // how long a frame may take to complete after its first fragment; 0: interval + 30 ms
  size_t mtu = wire::kDefaultMtu;
  int64_t initial_bitrate_bps = 10'000'000;
  // Each pose datagram carries this many of the newest samples (1..wire::PoseBatch::kMaxPoses): a sample
  // survives the loss of all but one of the datagrams that carry it.
  size_t poses_per_datagram = 3;
  // Called on the network thread with each room state the server sends (rooms only; docs/rooms.md).
  std::function<void(const wire::RoomStateMessage&)> on_room_state{};
};

struct StreamClientStats {
  AssemblerStats frames;
  uint64_t datagrams = 0, keyframe_requests = 0, nacks_sent = 0, room_states = 0,
           path_challenges_answered = 0;
  uint64_t whole_frame_nacks_sent = 0;  // of nacks_sent: for frames of which nothing arrived
  std::array<uint64_t, 6> rejected{};
  int64_t clock_offset_ns = 0, rtt_ns = 0;
  bool clock_ready = false;
  int64_t estimate_bps = 0, received_bps = 0;
  double loss = 0;
  // The client -> server direction as the server counts it (its last clock-sync reply): what poses need.
  // Until the server has measured it (uplink_measured), the client assumes the worst.
  double uplink_loss = 0, uplink_burst_mean = 1;
  bool uplink_measured = false;
};

class StreamClient {
 public:
  // `on_frame` runs on the client's network thread for each frame, in order; keep it short or copy out.
  StreamClient(const StreamClientConfig& config, std::function<void(const AssembledFrame&)> on_frame);
  ~StreamClient();
  void send_pose(const wire::PoseMessage& pose);     // thread-safe
  void send_input(const wire::InputMessage& input);  // thread-safe
  void send_hand(const wire::HandMessage& hand);     // thread-safe
  void set_decode_ms(float ms);                      // reported to the server
  // How far from the middle of their display slots frames become ready (DisplayClock): reported, so that
  // the node renders on the client's clock. Thread-safe.
  void set_display_phase_error_ns(int64_t ns);
  // Thread-safe: the decoder could not decode `frame_id` (its reference chain is broken, e.g. the stream's
  // first keyframe never arrived): ask for a keyframe. The server ignores it when a keyframe sent after that
  // frame already repairs it, so asking once per undecodable frame costs no extra keyframes.
  void request_keyframe(uint64_t frame_id);
  StreamClientStats stats() const;
  int64_t server_to_client_ns(int64_t server_ns) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo

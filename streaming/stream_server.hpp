#pragma once
// Node side of one session's UDP stream: paces each frame's fragments over part of the frame interval,
// adds Reed-Solomon parity sized by FecPolicy from the loss the client reports, retransmits on NACK while
// the fragment is still kept, answers clock pings, and turns receiver reports into a target bitrate
// (GCC: the client's delay-based estimate capped by loss). Poses and keyframe requests come back.
// Boost.Asio stays inside stream_server.cpp; one thread per session, no lock shared between sessions.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "streaming/bandwidth_estimator.hpp"
#include "streaming/datagram_crypto.hpp"
#include "streaming/frame_packetizer.hpp"
#include "streaming/messages.hpp"

namespace kairo {

struct StreamServerConfig {
  std::string listen = "127.0.0.1:0";
  uint32_t session_id = 1;
  SessionKey key;
  int fps = 90;
  double pacing_fraction = 0.5;  // a frame's datagrams are spread over this share of the frame interval
  size_t mtu = wire::kDefaultMtu;
  int64_t initial_bitrate_bps = 10'000'000;
  int64_t min_bitrate_bps = 300'000;
  int64_t max_bitrate_bps = 500'000'000;  // video bitrate bounds for the target handed to the encoder
  double assumed_loss = 0.03;  // FEC protection until reports arrive (then decays towards the measured loss)
};

struct StreamServerStats {
  uint64_t frames = 0, datagrams = 0, video_bytes = 0;
  uint64_t fec_datagrams = 0, fec_bytes = 0, retransmitted = 0, retransmitted_bytes = 0;
  uint64_t nacks = 0, keyframe_requests = 0, poses = 0, reports = 0, pings = 0, inputs = 0,
           inputs_dropped = 0;
  std::array<uint64_t, 6> rejected{};  // by OpenResult
  int64_t target_bitrate_bps = 0;
  double loss = 0, burst_mean = 1;
  int64_t receiver_estimate_bps = 0;
  double wire_per_video = 1;  // bytes on the wire per byte of video (parity, retransmissions, headers)
};

class StreamServer {
 public:
  explicit StreamServer(const StreamServerConfig& config);
  ~StreamServer();
  uint16_t port() const;
  bool connected() const;  // an authenticated datagram has arrived from the client
  // Thread-safe. Copies the access unit; its fragments go out paced on the session's thread.
  void send_frame(const FrameInfo& info, std::span<const uint8_t> access_unit);
  int64_t target_bitrate_bps() const;
  bool take_keyframe_request();
  std::optional<wire::PoseMessage> latest_pose() const;
  // Input events in arrival order since the last call (bounded: the oldest are dropped past 256).
  std::vector<wire::InputMessage> take_inputs();
  StreamServerStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo

#pragma once
// The small fixed-layout messages that travel beside the video (all inside authenticated datagrams).
// Little-endian, fixed sizes, so that parsing is a bounds check and a few loads: no allocation.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "streaming/wire.hpp"

namespace kairo::wire {

// Client -> server at up to 1000 Hz: the head pose the next frame should be rendered for.
struct PoseMessage {
  uint64_t pose_id = 0;
  int64_t sample_time_ns = 0;   // client clock
  int64_t display_time_ns = 0;  // client clock: when the client predicts the frame will be shown
  float position[3] = {0, 0, 0};
  float orientation[4] = {0, 0, 0, 1};  // x, y, z, w
  static constexpr size_t kSize = 52;
};

// Client -> server, one kPose datagram: the newest pose samples, oldest first (1 to kMaxPoses). Each sample
// goes up in several consecutive datagrams, so a lost datagram costs the node no sample: the next one carries
// it (the predictor keeps its history, the room its heads).
struct PoseBatch {
  static constexpr size_t kMaxPoses = 4;
  std::array<PoseMessage, kMaxPoses> poses{};
  size_t count = 0;
  size_t size() const { return count * PoseMessage::kSize; }
};

// Client -> server: fragments a frame still needs.
struct NackMessage {
  uint64_t frame_id = 0;
  uint8_t stream = 0;
  uint8_t count = 0;
  std::array<std::pair<uint8_t, uint8_t>, 64> fragments{};  // (block, index)
  size_t size() const { return 10 + 2 * size_t(count); }
};

// Client -> server at least every 50 ms.
struct ReportMessage {
  uint64_t frames_delivered = 0, frames_lost = 0, frames_recovered = 0, late_fragments = 0;
  uint64_t fragments_received = 0,
           fragments_expected = 0;  // since the stream began: loss = 1 - received/expected
  uint32_t jitter_us = 0;
  float delay_trend = 0;  // ms of queueing delay growth per second (GCC trendline slope)
  float decode_ms = 0;
  uint64_t estimated_bitrate_bps = 0;   // the receiver's delay-based estimate (0: none yet)
  uint64_t received_bitrate_bps = 0;    // measured over the last report interval
  uint32_t loss_burst_mean_x100 = 100;  // mean loss run length x100 (1.00 = isolated losses)
  uint32_t rtt_us = 0;                  // the client's clock-sync round trip (0: not measured yet)
  uint64_t link_capacity_bps = 0;  // what recent frames' packet trains showed (streaming/link_capacity.hpp)
  int32_t display_phase_error_us =
      0;                        // frames ready this far before where they should be in their display slot
  uint32_t loss_burst_p90 = 1;  // 90 % of loss runs (in datagrams) are this long or shorter
  static constexpr size_t kSize = 100;
};

struct PingMessage {
  int64_t client_send_ns = 0;
  static constexpr size_t kSize = 8;
};
struct PongMessage {
  int64_t client_send_ns = 0;
  int64_t server_receive_ns = 0;
  int64_t server_send_ns = 0;
  // How the client -> server direction loses datagrams, as the server counts them
  // (streaming/uplink_loss.hpp): the client sends its poses in more datagrams when they need it. A burst mean
  // of 0: not measured yet.
  uint32_t uplink_loss_ppm = 0;
  uint32_t uplink_burst_mean_x100 = 0;
  static constexpr size_t kSize = 32;
};

// Client -> server: a button, trigger, thumbstick axis or hand-tracking event, with the client's time.
struct InputMessage {
  int64_t time_ns = 0;   // client clock
  uint8_t device = 0;    // 0 head, 1 left hand, 2 right hand, 3 gamepad, 4 eye gaze (kGaze)
  uint16_t control = 0;  // application-defined control id
  float value = 0;       // button 0/1, trigger 0..1, axis -1..1
  static constexpr size_t kSize = 16;
};

// Eye gaze as input events: device kGaze, control 0 = x, 1 = y, in the eye image normalised -1..1 (x right,
// y down). The node centres foveation on it.
constexpr uint8_t kGaze = 4;
constexpr uint16_t kGazeX = 0, kGazeY = 1;

struct KeyframeRequestMessage {
  uint64_t lost_frame_id = 0;
  static constexpr size_t kSize = 8;
};

// Server -> client kPathChallenge and its echo, client -> server kPathResponse: 16 random bytes. As in QUIC
// (RFC 9000 8.2), a client address gets the stream only once it has echoed a challenge sent to it, so a
// datagram captured and re-sent from elsewhere cannot redirect the stream.
struct PathMessage {
  std::array<uint8_t, 16> token{};
  static constexpr size_t kSize = 16;
};

size_t write(const PathMessage& m, std::span<uint8_t> out);
std::optional<PathMessage> read_path(std::span<const uint8_t> in);
size_t write(const PoseMessage& m, std::span<uint8_t> out);
size_t write(const PoseBatch& m, std::span<uint8_t> out);
size_t write(const NackMessage& m, std::span<uint8_t> out);
size_t write(const ReportMessage& m, std::span<uint8_t> out);
size_t write(const PingMessage& m, std::span<uint8_t> out);
size_t write(const PongMessage& m, std::span<uint8_t> out);
size_t write(const KeyframeRequestMessage& m, std::span<uint8_t> out);
size_t write(const InputMessage& m, std::span<uint8_t> out);

std::optional<PoseMessage> read_pose(std::span<const uint8_t> in);  // refuses non-finite values
// 1 to kMaxPoses poses, each as read_pose checks it, ids strictly increasing; a single pose is a batch of
// one.
std::optional<PoseBatch> read_pose_batch(std::span<const uint8_t> in);
std::optional<NackMessage> read_nack(std::span<const uint8_t> in);
std::optional<ReportMessage> read_report(std::span<const uint8_t> in);
std::optional<PingMessage> read_ping(std::span<const uint8_t> in);
std::optional<PongMessage> read_pong(std::span<const uint8_t> in);
std::optional<KeyframeRequestMessage> read_keyframe_request(std::span<const uint8_t> in);
std::optional<InputMessage> read_input(
    std::span<const uint8_t> in);  // refuses unknown devices, non-finite values

}  // namespace kairo::wire

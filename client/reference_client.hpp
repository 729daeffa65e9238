#pragma once
// Kairo's reference thin client, headless: logs in, creates a session, sends head poses from a trace (or
// synthetic head motion) at the display rate, receives the stream, decodes it with libavcodec, undoes
// foveation, and measures every frame's latency from pose sampled to frame decoded, stage by stage, in the
// client's clock (node timestamps converted with the transport's clock offset).
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/presentation.hpp"
#include "encoder/video_decoder.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/room_messages.hpp"

namespace kairo {

// One hand as the client tracks it (rooms: docs/rooms.md).
struct HandSample {
  Pose pose;
  float grip = 0;  // 0..1: past 0.5 grabs a shared object within reach, below 0.3 lets it go
  bool tracked = true;
};
using HandPair = std::array<std::optional<HandSample>, 2>;  // left, right; nullopt: not sent

// Hands at rest in front of the body, following the head's yaw (`kairo client --hands`).
HandPair resting_hands(const Pose& head);

struct ClientOptions {
  std::string control_url;
  std::string user, password;
  std::string scene = "vr-room";
  int eye_width = 512, eye_height = 512, fps = 30;
  std::string codec = "h264";
  std::string trace{};  // JSONL; empty: synthetic head motion
  double duration_s = 10;
  std::string via{};       // HOST:PORT of a relay in front of the node
  std::string save_dir{};  // decoded frames as PNG
  int save_every = 1;      // every Nth decoded frame
  std::string ca_file{};
  std::optional<std::array<float, 2>>
      gaze{};  // eye gaze to send (x right, y down, -1..1); none: no eye tracker
  // Called on the decode thread for every decoded frame with its access unit's size (tests compare frames
  // with a direct render and follow the bitrate).
  std::function<void(const FrameMetadata&, const DecodedPicture&, size_t)> on_decoded{};
  std::string room{};  // non-empty: join this room (shared scene, avatars, shared objects)
  // Hands to send with every pose, from the session time (seconds) and the head pose. Empty: no hands.
  std::function<HandPair(double, const Pose&)> hands{};
  // Called on the network thread with every room state the node sends.
  std::function<void(const wire::RoomStateMessage&)> on_room_state{};
};

// Per-frame latency stages in milliseconds; they add up to the total.
inline const std::vector<std::string>& latency_stage_names() {
  static const std::vector<std::string> names{"uplink", "pose_wait", "render",  "encode_queue", "encode",
                                              "pacing", "send",      "network", "decode",       "total"};
  return names;
}

// What a stretch of the session looked like (every 10 s): a loss spiral or a keyframe storm shows here as it
// happens, not only in the totals.
struct ReportWindow {
  double end_s = 0;  // since the stream started
  uint64_t frames_decoded = 0, frames_lost = 0, keyframes = 0;
  double bitrate_bps = 0;  // received, at the window's end
};

struct ClientReport {
  std::string session_id, node_address;
  uint64_t frames_sent = 0, frames_decoded = 0, frames_late = 0, frames_lost = 0, frames_recovered = 0;
  uint64_t keyframes = 0, fec_recovered_fragments = 0, retransmitted_fragments = 0;
  // What the client asked of the node: retransmissions (each may also make the node stop predicting from the
  // frame: a repair) and recoveries from a lost frame (a repair or a keyframe).
  uint64_t nacks_sent = 0, recovery_requests = 0;
  // The display (client/presentation.hpp): slots at the frame rate since the first frame, those that showed a
  // new correct frame (frames_displayed_correct) and those that held the last one (frames_held), the freezes;
  // frames decoded from a broken reference chain and not shown.
  DisplayTotals display;
  uint64_t frames_broken_chain = 0;
  uint64_t chain_repairs =
      0;  // breaks repaired by a repair frame (the node's reference invalidation), not a keyframe
  uint64_t video_bytes = 0;  // decoded access units (the average bitrate is this over the duration)
  double duration_s = 0, fps = 0, rtt_ms = 0;
  double pose_interval_ms = 0;  // the display interval poses are sampled at (at least 90 Hz)
  // Pose datagrams sent per interval (more when the uplink loses them in bursts: streaming/uplink_loss.hpp)
  // and the uplink's loss the server last reported.
  double pose_datagrams_per_interval_mean = 0, uplink_loss = 0;
  int pose_datagrams_per_interval_max = 1;
  double bitrate_bps = 0;  // received at the end (the transport's estimate window)
  // Per stage, one sample per decoded frame; also "overhead": pose_wait + encode_queue + pacing + send, the
  // time that is neither work nor the network; and "pose_age": render start less the pose's sample time and
  // the fastest uplink trip (how stale the pose was beyond the network's one-way time).
  std::map<std::string, std::vector<double>> latency_ms;
  std::vector<ReportWindow> windows;  // one per 10 s
  std::vector<std::string> saved_frames;
  // Rooms: the members at the end and every event seen (each once, in order), node clock.
  std::vector<std::string> room_members;
  std::vector<wire::RoomEvent> room_events;
  uint64_t room_states = 0;
  nlohmann::json room_json() const;     // null without a room
  nlohmann::json windows_json() const;  // [{end_s, frames_decoded, frames_lost, keyframes, bitrate_bps}]
  nlohmann::json to_json() const;       // {frames_*, latency_ms: {stage: {p50, p99, mean}}, bitrate_bps, ...}
};

// Throws kairo::Error with a clear message: login refused, no capacity, the node went down (the control
// plane's failure reason), no frames arriving.
ClientReport run_client(const ClientOptions& options, const std::atomic<bool>& stop);

}  // namespace kairo

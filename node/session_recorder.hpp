#pragma once
// `kairo node --record DIR`: what a live session did, for QA to replay. DIR/<session id>/ gets
// session.json (scene, sizes, frame rate, codec, caps), poses.jsonl (one line per rendered frame: the head
// pose it was rendered from, after prediction, in the pose-trace format: `kairo replay --trace DIR/<session
// id>` takes it as is), frames.jsonl (one line per rendered frame: the frame stage's settings, foveation and
// its centre, scale, bitrate, frame rate: replay reproduces the session's frames), encodes.jsonl (one line
// per frame the node encoded otherwise than the encoder would have by itself, because its client lost a
// frame: a keyframe asked for, or a repair from the lost frame; replay makes the same encodes) and
// events.jsonl (quality decisions, room events, the end and its reason). Written by the session's render
// thread, buffered, except encodes.jsonl: the encode thread's own file, written line by line (it is rare).
// Off the hot path when not recording.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "core/pose.hpp"
#include "node/frame_stage.hpp"
#include "node/quality_controller.hpp"
#include "node/session_pipeline.hpp"
#include "streaming/room_messages.hpp"

namespace kairo {

class SessionRecorder {
 public:
  // Throws kairo::Error (runtime) when the directory cannot be written.
  SessionRecorder(const std::filesystem::path& dir, const SessionSpec& spec);
  // A rendered frame: the pose's sample time (client clock), the head it was rendered from, its settings.
  void frame(int64_t sample_time_ns, const Pose& head, const FrameSettings& settings);
  void decision(int64_t now_ns, const QualityDecision& d);
  // Encode thread only: frame `frame_id` was encoded as a keyframe, or as a repair from `recover_from`
  // (`speculative`: only NACKed), for a loss the client reported.
  void recovery_encode(uint64_t frame_id, bool keyframe, std::optional<uint64_t> recover_from,
                       bool speculative);
  void room_event(const wire::RoomEvent& e);  // joins, leaves, grabs and releases in the session's room
  void ended(int64_t now_ns, const std::string& reason, bool failed);

 private:
  std::ofstream poses_, frames_, events_;
  std::ofstream encodes_;  // the encode thread's
  int64_t first_pose_ns_ = -1, first_event_ns_ = -1;
};

}  // namespace kairo

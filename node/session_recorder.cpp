#include "node/session_recorder.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/trace.hpp"

namespace kairo {

SessionRecorder::SessionRecorder(const std::filesystem::path& dir, const SessionSpec& spec) {
  const auto session_dir = dir / spec.id;
  std::error_code ec;
  std::filesystem::create_directories(session_dir, ec);
  if (ec)
    throw_runtime("cannot create the recording directory " + session_dir.string() + ": " + ec.message());
  nlohmann::json session{
      {"session_id", spec.id},         {"scene", spec.scene},      {"eye_width", spec.eye_width},
      {"eye_height", spec.eye_height}, {"fps", spec.fps},          {"codec", codec_name(spec.codec)},
      {"poses", "poses.jsonl"},        {"frames", "frames.jsonl"}, {"events", "events.jsonl"},
      {"encodes", "encodes.jsonl"}};
  if (spec.max_bitrate_bps) session["max_bitrate_bps"] = *spec.max_bitrate_bps;
  if (spec.max_fps) session["max_fps"] = *spec.max_fps;
  if (spec.foveation) session["foveation"] = *spec.foveation;
  if (!spec.room.empty()) session["room"] = spec.room;
  std::ofstream(session_dir / "session.json") << session.dump(2) << "\n";
  poses_.open(session_dir / "poses.jsonl");
  frames_.open(session_dir / "frames.jsonl");
  events_.open(session_dir / "events.jsonl");
  encodes_.open(session_dir / "encodes.jsonl");
  if (!poses_ || !frames_ || !events_ || !encodes_)
    throw_runtime("cannot write the recording in " + session_dir.string());
}

void SessionRecorder::frame(int64_t sample_time_ns, const Pose& head, const FrameSettings& s) {
  if (first_pose_ns_ < 0) first_pose_ns_ = sample_time_ns;
  // A pose rendered twice (no newer one came) keeps its time: the trace format needs times that never go
  // back, and replay renders by line, not by time.
  poses_ << format_trace_line(TraceSample{.t_ns = std::max<int64_t>(0, sample_time_ns - first_pose_ns_),
                                          .head = head,
                                          .ipd = kDefaultIpdMetres,
                                          .fov = std::nullopt})
         << "\n";
  frames_ << nlohmann::json{{"foveation", s.foveation},
                            {"gaze", {s.gaze.x, s.gaze.y}},
                            {"scale", s.resolution_scale},
                            {"bitrate_bps", s.bitrate_bps},
                            {"fps", s.fps}}
                 .dump()
          << "\n";
}

void SessionRecorder::decision(int64_t now_ns, const QualityDecision& d) {
  if (first_event_ns_ < 0) first_event_ns_ = now_ns;
  events_ << nlohmann::json{{"t_ns", now_ns - first_event_ns_},
                            {"event", "quality"},
                            {"knob", d.knob},
                            {"from", d.from},
                            {"to", d.to},
                            {"reason", d.reason}}
                 .dump()
          << "\n";
}

void SessionRecorder::recovery_encode(uint64_t frame_id, bool keyframe, std::optional<uint64_t> recover_from,
                                      bool speculative) {
  nlohmann::json line{{"frame", frame_id}, {"keyframe", keyframe}, {"speculative", speculative}};
  if (recover_from) line["recover_from"] = *recover_from;
  // Flushed at once: the end of the session is recorded by another thread, and these lines are few.
  encodes_ << line.dump() << std::endl;
}

void SessionRecorder::room_event(const wire::RoomEvent& e) {
  if (first_event_ns_ < 0) first_event_ns_ = e.time_ns;
  nlohmann::json line{{"t_ns", e.time_ns - first_event_ns_},
                      {"event", "room"},
                      {"kind", wire::room_event_name(e.kind)},
                      {"seq", e.seq},
                      {"slot", e.slot},
                      {"user", std::string(wire::user_name_view(e.user))}};
  if (e.kind == wire::RoomEventKind::kGrab || e.kind == wire::RoomEventKind::kRelease)
    line["object"] = e.object;
  events_ << line.dump() << "\n";
}

void SessionRecorder::ended(int64_t now_ns, const std::string& reason, bool failed) {
  if (first_event_ns_ < 0) first_event_ns_ = now_ns;
  events_ << nlohmann::json{{"t_ns", now_ns - first_event_ns_},
                            {"event", failed ? "failed" : "ended"},
                            {"reason", reason}}
                 .dump()
          << "\n";
  poses_.flush();
  frames_.flush();
  events_.flush();
}

}  // namespace kairo

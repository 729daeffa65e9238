#include "node/node_metrics.hpp"

#include <iterator>

#include <cstdio>

#include "streaming/room_messages.hpp"

namespace kairo {

namespace {
constexpr const char* kStageNames[] = {"pose_wait", "render", "encode", "node_total"};
constexpr const char* kOutcomeNames[] = {"rendered", "sent", "dropped", "failed"};
constexpr const char* kTransportNames[] = {"udp", "webrtc"};
constexpr const char* kDatagramNames[] = {"sent", "retransmitted", "fec", "lost"};

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", v);
  return buffer;
}
}  // namespace

void NodeMetrics::observe_stage(Stage stage, double seconds) {
  Histogram& h = stages_[size_t(stage)];
  size_t bucket = kBounds.size();
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (seconds <= kBounds[i]) {
      bucket = i;
      break;
    }
  ++h.buckets[bucket];
  ++h.count;
  h.sum_us += int64_t(seconds * 1e6);
}

void NodeMetrics::session_started(const std::string& backend) {
  ++active_;
  std::lock_guard lock(mutex_);
  ++backends_[backend];
}

void NodeMetrics::session_ended(const std::string& backend, bool failed) {
  --active_;
  std::lock_guard lock(mutex_);
  if (auto it = backends_.find(backend); it != backends_.end() && --it->second == 0) backends_.erase(it);
  ++sessions_ended_[failed ? "failed" : "ended"];
}

void NodeMetrics::quality_decision(const std::string& knob, const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++decisions_[{knob, reason}];
}

void NodeMetrics::set_session_target(const std::string& session, int64_t bitrate_bps,
                                     const char* limited_by) {
  std::lock_guard lock(mutex_);
  session_targets_[session] = SessionTarget{bitrate_bps, limited_by};
}

void NodeMetrics::forget_session(const std::string& session) {
  std::lock_guard lock(mutex_);
  session_targets_.erase(session);
}

std::string NodeMetrics::render() const {
  std::string out;
  out += "# HELP kairo_frame_stage_duration_seconds Time each frame spent in each node stage.\n";
  out += "# TYPE kairo_frame_stage_duration_seconds histogram\n";
  for (size_t s = 0; s < stages_.size(); ++s) {
    const Histogram& h = stages_[s];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBounds.size(); ++i) {
      cumulative += h.buckets[i];
      out += std::string("kairo_frame_stage_duration_seconds_bucket{stage=\"") + kStageNames[s] + "\",le=\"" +
             number(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += std::string("kairo_frame_stage_duration_seconds_bucket{stage=\"") + kStageNames[s] +
           "\",le=\"+Inf\"} " + std::to_string(h.count.load()) + "\n";
    out += std::string("kairo_frame_stage_duration_seconds_sum{stage=\"") + kStageNames[s] + "\"} " +
           number(double(h.sum_us.load()) * 1e-6) + "\n";
    out += std::string("kairo_frame_stage_duration_seconds_count{stage=\"") + kStageNames[s] + "\"} " +
           std::to_string(h.count.load()) + "\n";
  }
  out += "# HELP kairo_frames_total Frames by outcome and transport.\n# TYPE kairo_frames_total counter\n";
  for (size_t t = 0; t < frames_.size(); ++t)
    for (size_t i = 0; i < frames_[t].size(); ++i)
      out += std::string("kairo_frames_total{outcome=\"") + kOutcomeNames[i] + "\",transport=\"" +
             kTransportNames[t] + "\"} " + std::to_string(frames_[t][i].load()) + "\n";
  out += "# HELP kairo_video_bytes_total Encoded video bytes sent.\n# TYPE kairo_video_bytes_total counter\n";
  out += "kairo_video_bytes_total " + std::to_string(video_bytes_.load()) + "\n";
  out += "# HELP kairo_packets_total Datagrams by kind (lost: as the clients report).\n";
  out += "# TYPE kairo_packets_total counter\n";
  for (size_t i = 0; i < datagrams_.size(); ++i)
    out += std::string("kairo_packets_total{kind=\"") + kDatagramNames[i] + "\"} " +
           std::to_string(datagrams_[i].load()) + "\n";
  out += "# HELP kairo_datagrams_rejected_total Datagrams refused by the node, by reason.\n";
  out += "# TYPE kairo_datagrams_rejected_total counter\n";
  static constexpr const char* kRejectionNames[] = {"malformed",       "wrong_session", "forged",
                                                    "replayed",        "stale",         "inbox_full",
                                                    "unknown_session", "mux_malformed"};
  static_assert(std::size(kRejectionNames) == size_t(Rejection::kCount));
  for (size_t i = 0; i < rejected_.size(); ++i) {
    const uint64_t n = i == size_t(Rejection::kUnknownSession) ? mux_unknown_.load()
                       : i == size_t(Rejection::kMuxMalformed) ? mux_malformed_.load()
                                                               : rejected_[i].load();
    out += std::string("kairo_datagrams_rejected_total{reason=\"") + kRejectionNames[i] + "\"} " +
           std::to_string(n) + "\n";
  }
  out += "# HELP kairo_path_events_total Client address validation and retransmission control.\n";
  out += "# TYPE kairo_path_events_total counter\n";
  static constexpr const char* kPathNames[] = {"challenge_sent", "validated", "amplification_limited",
                                               "retransmission_suppressed"};
  static_assert(std::size(kPathNames) == size_t(PathEvent::kCount));
  for (size_t i = 0; i < path_events_.size(); ++i)
    out += std::string("kairo_path_events_total{event=\"") + kPathNames[i] + "\"} " +
           std::to_string(path_events_[i].load()) + "\n";
  out +=
      "# HELP kairo_rtt_seconds Latest round-trip time a client measured.\n# TYPE kairo_rtt_seconds gauge\n";
  out += "kairo_rtt_seconds " + number(double(rtt_us_.load()) * 1e-6) + "\n";
  out += "# HELP kairo_keyframes_total Keyframes sent, by cause.\n# TYPE kairo_keyframes_total counter\n";
  static constexpr const char* kKeyframeCauses[] = {"start", "loss", "resize", "encoder"};
  static_assert(std::size(kKeyframeCauses) == size_t(KeyframeCause::kCount));
  for (size_t i = 0; i < keyframes_.size(); ++i)
    out += std::string("kairo_keyframes_total{cause=\"") + kKeyframeCauses[i] + "\"} " +
           std::to_string(keyframes_[i].load()) + "\n";
  out +=
      "# HELP kairo_loss_repairs_total Clients' losses repaired by a P-frame predicted from before the loss "
      "(reference invalidation) instead of a keyframe.\n# TYPE kairo_loss_repairs_total counter\n";
  out += "kairo_loss_repairs_total " + std::to_string(loss_repairs_.load()) + "\n";
  out +=
      "# HELP kairo_keyframe_requests_total Clients' recovery requests: honoured, or answered already by a "
      "keyframe or repair sent after the loss.\n# TYPE kairo_keyframe_requests_total counter\n";
  out += "kairo_keyframe_requests_total{outcome=\"honoured\"} " +
         std::to_string(keyframe_requests_[0].load()) + "\n";
  out += "kairo_keyframe_requests_total{outcome=\"answered_already\"} " +
         std::to_string(keyframe_requests_[1].load()) + "\n";
  out += "# HELP kairo_sessions_active Sessions running on this node.\n# TYPE kairo_sessions_active gauge\n";
  out += "kairo_sessions_active " + std::to_string(active_.load()) + "\n";
  std::lock_guard lock(mutex_);
  out +=
      "# HELP kairo_encoder_sessions Sessions by encoder backend in use.\n# TYPE kairo_encoder_sessions "
      "gauge\n";
  for (const auto& [backend, n] : backends_)
    out += "kairo_encoder_sessions{backend=\"" + backend + "\"} " + std::to_string(n) + "\n";
  out += "# HELP kairo_sessions_finished_total Sessions finished, by result.\n";
  out += "# TYPE kairo_sessions_finished_total counter\n";
  for (const auto& [result, n] : sessions_ended_)
    out += "kairo_sessions_finished_total{result=\"" + result + "\"} " + std::to_string(n) + "\n";
  out += "# HELP kairo_quality_decisions_total Quality controller changes by knob and reason.\n";
  out += "# TYPE kairo_quality_decisions_total counter\n";
  for (const auto& [key, n] : decisions_)
    out += "kairo_quality_decisions_total{knob=\"" + key.first + "\",reason=\"" + key.second + "\"} " +
           std::to_string(n) + "\n";
  out +=
      "# HELP kairo_room_events_total Room events: members joining and leaving, shared objects grabbed and "
      "released.\n";
  out += "# TYPE kairo_room_events_total counter\n";
  for (size_t i = 0; i < room_events_.size(); ++i)
    out += std::string("kairo_room_events_total{kind=\"") +
           wire::room_event_name(wire::RoomEventKind(i + 1)) + "\"} " +
           std::to_string(room_events_[i].load()) + "\n";
  out +=
      "# HELP kairo_session_target_bitrate_bps A session's encoder target, by what limits it (link estimate, "
      "picture ceiling, control plane cap).\n# TYPE kairo_session_target_bitrate_bps gauge\n";
  for (const auto& [session, target] : session_targets_)
    out += "kairo_session_target_bitrate_bps{session=\"" + session + "\",limited_by=\"" + target.limited_by +
           "\"} " + std::to_string(target.bitrate_bps) + "\n";
  out += "# HELP kairo_node_scene_fetches_total Catalogue scenes fetched into the node's cache, by result.\n";
  out += "# TYPE kairo_node_scene_fetches_total counter\n";
  out += "kairo_node_scene_fetches_total{result=\"ok\"} " + std::to_string(scene_fetches_[0].load()) + "\n";
  out +=
      "kairo_node_scene_fetches_total{result=\"failed\"} " + std::to_string(scene_fetches_[1].load()) + "\n";
  out += "# HELP kairo_room_members Sessions in multi-user rooms.\n# TYPE kairo_room_members gauge\n";
  out += "kairo_room_members " + std::to_string(room_events_[0].load() - room_events_[1].load()) + "\n";
  return out;
}

}  // namespace kairo

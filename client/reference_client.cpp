#include "client/reference_client.hpp"
#include "core/names.hpp"
#include "core/session_shape.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "client/frame_reconstruction.hpp"
#include "client/presentation.hpp"
#include "control-plane/api_json.hpp"
#include "control-plane/http_client.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/image_io.hpp"
#include "core/percentile.hpp"
#include "core/realtime_scheduling.hpp"
#include "core/synthetic_trace.hpp"
#include "core/trace.hpp"
#include "streaming/stream_client.hpp"
#include "streaming/uplink_loss.hpp"

namespace kairo {

using nlohmann::json;

namespace {

std::string api_error(const control::HttpResult& r) {
  const json body = json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object())
    return body["error"].value("code", "") + ": " + body["error"].value("message", "");
  return "HTTP " + std::to_string(r.status);
}

// Head pose at `t_ns` into a trace (looped), interpolated between samples.
class TracePlayer {
 public:
  explicit TracePlayer(std::vector<TraceSample> samples) : samples_(std::move(samples)) {
    if (samples_.empty()) throw_invalid_input("the pose trace is empty");
    span_ = std::max<int64_t>(1, samples_.back().t_ns - samples_.front().t_ns);
  }
  Pose at(int64_t t_ns) {
    const int64_t t = samples_.front().t_ns + (samples_.size() > 1 ? t_ns % span_ : 0);
    if (index_ >= samples_.size() || samples_[index_].t_ns > t) index_ = 0;  // looped around
    while (index_ + 1 < samples_.size() && samples_[index_ + 1].t_ns <= t) ++index_;
    if (index_ + 1 >= samples_.size()) return samples_[index_].head;
    const TraceSample& a = samples_[index_];
    const TraceSample& b = samples_[index_ + 1];
    const float f = float(double(t - a.t_ns) / double(std::max<int64_t>(1, b.t_ns - a.t_ns)));
    Pose p;
    p.position = glm::mix(a.head.position, b.head.position, f);
    p.orientation = glm::normalize(glm::slerp(a.head.orientation, b.head.orientation, f));
    return p;
  }

 private:
  std::vector<TraceSample> samples_;
  int64_t span_ = 1;
  size_t index_ = 0;
};

struct ReceivedFrame {
  std::vector<uint8_t> data;
  int64_t first_send_ns = 0, last_send_ns = 0, complete_ns = 0;
  int fec_recovered = 0, retransmitted = 0;
};

// The session on the control plane: logged in, created, watched once a second, ended.
class ControlSession {
 public:
  explicit ControlSession(const ClientOptions& o)
      : url_(control::parse_control_url(o.control_url)), http_{.timeout_s = 10, .ca_file = o.ca_file} {
    v1::LoginRequest login;
    login.set_username(o.user);
    login.set_password(o.password);
    auto r = control::http_request(url_, "POST", "/v1/auth/login", control::to_json(login), "", http_);
    if (r.status != 200) throw_invalid_input("login refused: " + api_error(r));
    v1::TokenPair tokens;
    control::parse_answer(r.body, tokens);
    token_ = tokens.access_token();
    v1::SessionRequest request;
    request.set_scene(o.scene);
    request.set_eye_width(o.eye_width);
    request.set_eye_height(o.eye_height);
    request.set_fps(o.fps);
    request.set_codec(o.codec);
    if (!o.room.empty()) request.set_room(o.room);
    r = control::http_request(url_, "POST", "/v1/sessions", control::to_json(request), token_, http_);
    if (r.status != 201) throw_runtime("session refused: " + api_error(r));
    control::parse_answer(r.body, session_);
    spdlog::info("session {} placed on {}", escape_for_log(id().substr(0, 8)),
                 escape_for_log(session_.node_address()));
  }
  const std::string& id() const { return session_.session_id(); }
  const std::string& node_address() const { return session_.node_address(); }
  const std::string& key_hex() const { return session_.session_key(); }

  // Why the session is over, as the control plane says (failed with its reason, or ended), or "" while it
  // runs. A control plane that does not answer is not a reason: the stream may be fine.
  std::string over() const {
    try {
      const auto s = control::http_request(url_, "GET", "/v1/sessions/" + id(), "", token_, http_);
      if (s.status != 200) return "";
      v1::Session state;
      control::parse_answer(s.body, state);
      if (state.state() == "failed")
        return "the session failed: " +
               (state.has_failure_reason() ? state.failure_reason() : std::string("no reason given"));
      if (state.state() == "ended") return "the session was ended by the control plane";
    } catch (const std::exception& e) {
      spdlog::warn("session status: {}", escape_for_log(e.what()));
    }
    return "";
  }

  void end() const {
    try {
      control::http_request(url_, "DELETE", "/v1/sessions/" + id(), "", token_, http_);
    } catch (const std::exception& e) {
      spdlog::warn("could not end the session: {}", escape_for_log(e.what()));
    }
  }

 private:
  control::ControlUrl url_;
  control::HttpClientOptions http_;
  std::string token_;
  v1::Session session_;
};

// Asks the control plane once a second whether the session is over, on its own thread: a request can take
// tens of milliseconds, and the pose loop must not skip samples for it.
class SessionWatcher {
 public:
  explicit SessionWatcher(const ControlSession& session) : session_(session), thread_([this] { run(); }) {}
  ~SessionWatcher() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) {
      lock.unlock();
      std::string reason = session_.over();
      lock.lock();
      if (!reason.empty()) failure_ = std::move(reason);
    }
  }
  const ControlSession& session_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string failure_;
  std::thread thread_;  // last: starts once everything above exists
};

// Complete frames from the network thread to the decode thread: a ring of 16 whose buffers grow once and are
// reused. Full: the newest frame is dropped (counted) rather than the network thread blocked.
class FrameQueue {
 public:
  void push(const AssembledFrame& f) {
    std::lock_guard lock(mutex_);
    if (count_ == ring_.size()) {
      ++dropped_;
      return;
    }
    ReceivedFrame& slot = ring_[(head_ + count_) % ring_.size()];
    slot.data.assign(f.data.begin(), f.data.end());
    slot.first_send_ns = f.first_send_ns;
    slot.last_send_ns = f.last_send_ns;
    slot.complete_ns = f.complete_ns;
    slot.fec_recovered = f.fec_recovered;
    slot.retransmitted = f.retransmitted;
    ++count_;
    wake_.notify_one();
  }
  // Swaps the oldest frame into `out`; false once closed and empty.
  bool pop(ReceivedFrame& out) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return count_ > 0 || closed_; });
    if (count_ == 0) return false;
    std::swap(out, ring_[head_]);
    head_ = (head_ + 1) % ring_.size();
    --count_;
    return true;
  }
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    wake_.notify_all();
  }
  uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::array<ReceivedFrame, 16> ring_;
  size_t head_ = 0, count_ = 0;
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

// The decode thread: decodes each frame, measures its latency per stage in the client's clock, saves PNGs.
// Reads the report's frame fields under its own lock; the pose sender reads the latency estimate.
class FrameDecoder {
 public:
  FrameDecoder(const ClientOptions& o, FrameQueue& queue, StreamClient& client)
      : o_(o), queue_(queue), client_(client), thread_([this] { run(); }) {}
  ~FrameDecoder() { stop(); }
  void stop() {
    queue_.close();
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard lock(save_mutex_);
      saver_stopping_ = true;
    }
    save_wake_.notify_all();
    if (saver_.joinable()) saver_.join();
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }
  // How far ahead poses are predicted: the measured latency once frames arrive. Before the first one only
  // the round trip is known, and a frame cannot come back sooner than that plus a frame interval to make it
  // and one to decode it and wait for its slot. (A fixed 50 ms guess sat below the 40 ms round trip plus
  // any work: every run's first frames missed the display time their poses were predicted for.)
  int64_t latency_estimate_ns() const {
    const int64_t measured = latency_estimate_ns_;
    return measured > 0 ? measured : prior_latency_ns();
  }
  uint64_t frames_decoded() const {
    std::lock_guard lock(mutex_);
    return counts_.frames_decoded;
  }
  uint64_t keyframes() const {
    std::lock_guard lock(mutex_);
    return counts_.keyframes;
  }
  // The decoder's part of the report: frames, latency samples, saved PNGs, the streaming frame rate.
  void fill(ClientReport& report) const {
    std::lock_guard lock(mutex_);
    report.frames_decoded = counts_.frames_decoded;
    report.frames_late = counts_.frames_late;
    report.keyframes = counts_.keyframes;
    report.video_bytes = counts_.video_bytes;
    report.fec_recovered_fragments = counts_.fec_recovered_fragments;
    report.retransmitted_fragments = counts_.retransmitted_fragments;
    report.latency_ms = counts_.latency_ms;
    // Pose age at render start: how much older than the newest pose could be the pose a frame was rendered
    // with, i.e. the time from its sample to the render start less the fastest uplink trip seen (the trip
    // itself is the network's, not staleness).
    const auto uplink = counts_.latency_ms.find("uplink");
    if (uplink != counts_.latency_ms.end() && !uplink->second.empty()) {
      const double fastest = *std::min_element(uplink->second.begin(), uplink->second.end());
      auto& age = report.latency_ms["pose_age"];
      for (double ms : pose_age_from_sample_ms_) age.push_back(ms - fastest);
    }
    report.saved_frames = counts_.saved_frames;
    report.frames_broken_chain = counts_.frames_broken_chain;
    report.chain_repairs = counts_.chain_repairs;
    report.display = display_.totals();
    report.fps =
        last_decoded_ns_ > first_decoded_ns_
            ? double(counts_.frames_decoded - 1) / (double(last_decoded_ns_ - first_decoded_ns_) * 1e-9)
            : 0.0;
  }
  uint64_t highest_frame_id() const { return highest_frame_id_; }
  // The client sent its last pose at `client_ns`: frames rendered after it are not measured.
  void poses_stopped(int64_t client_ns) { poses_stopped_ns_ = client_ns; }

 private:
  int64_t prior_latency_ns() const {
    const int64_t rtt = client_.stats().rtt_ns;
    return (rtt > 0 ? rtt : kUnknownRttNs) + 2'000'000'000LL / std::max(1, o_.fps);
  }

  void run() {
    try {
      VideoDecoder decoder(parse_codec(o_.codec));
      DecodedPicture picture;
      ReceivedFrame frame;
      uint64_t index = 0;
      while (queue_.pop(frame)) {
        const auto m = read_frame_metadata(frame.data);
        if (!m) {
          spdlog::warn("frame without valid metadata dropped");
          continue;
        }
        const auto au = std::span<const uint8_t>(frame.data).subspan(FrameMetadata::kSize);
        bool got = false;
        try {
          got = decoder.decode(au, picture);
        } catch (const kairo::Error& e) {
          spdlog::warn("frame {} did not decode: {}", m->frame_id, e.what());
        }
        const int64_t decoded_ns = steady_now_ns();
        const bool show = presentable(*m, got, decoded_ns);
        // Recover from the break's first frame: the node invalidates from there, or sends a keyframe.
        if (!got) client_.request_keyframe(chain_.first_broken());
        if (!got) continue;
        measure(*m, frame, decoded_ns, au.size());  // latency and counts of every decoded frame, shown or not
        if (!show) continue;
        if (o_.on_decoded) o_.on_decoded(*m, picture, au.size());
        if (!o_.save_dir.empty() && index % uint64_t(o_.save_every) == 0) save(*m, picture);
        ++index;
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  // Only frames from an intact reference chain are shown (client/presentation.hpp); the display holds the
  // last good one meanwhile, and says so once per break.
  bool presentable(const FrameMetadata& m, bool decoded, int64_t decoded_ns) {
    const bool was_broken = chain_.broken();
    const bool show = chain_.on_frame(m.frame_id, m.keyframe, decoded, m.repairs_from, m.refreshed_from) ==
                      ReferenceChain::Verdict::kShow;
    if (!show) {
      // Ask for the repair (or keyframe) from the break's first frame, again each round trip while it stays
      // broken: the transport asks once per frame it gives up, but that request can be lost too, and a gap
      // can come from elsewhere (a frame dropped before decoding). The node merges repeated requests
      // (KeyframeRequests).
      const int64_t retry_ns =
          std::max<int64_t>(client_.stats().rtt_ns + 1'000'000'000LL / std::max(1, o_.fps), 20'000'000);
      if (decoded_ns - last_keyframe_request_ns_ >= retry_ns) {
        last_keyframe_request_ns_ = decoded_ns;
        client_.request_keyframe(chain_.first_broken());
      }
    }
    std::lock_guard lock(mutex_);
    if (show) {
      if (was_broken && held_since_ns_ != 0)
        spdlog::info("reference chain repaired at {} {}: showing frames again after {:.0f} ms",
                     m.keyframe       ? "keyframe"
                     : m.repairs_from ? "repair frame"
                                      : "the end of a refresh wave",
                     m.frame_id, double(decoded_ns - held_since_ns_) * 1e-6);
      held_since_ns_ = 0;
      display_.on_frame_ready(decoded_ns);
      client_.set_display_phase_error_ns(display_.phase_error_ns());
    } else if (!was_broken) {
      held_since_ns_ = decoded_ns;
      spdlog::info("holding the last good frame: {} (frames decoded from it are not shown until a repair)",
                   chain_.reason());
    }
    counts_.frames_broken_chain = chain_.frames_refused();
    counts_.chain_repairs = chain_.repairs();
    return show;
  }

  // Latency per stage: each a difference of timestamps the frame carries (node times converted by the
  // clock-sync offset), so they add up to the total.
  void measure(const FrameMetadata& m, const ReceivedFrame& frame, int64_t decoded_ns, size_t video_bytes) {
    auto to_client = [&](int64_t node_ns) { return client_.server_to_client_ns(node_ns); };
    const int64_t received = to_client(m.pose_received_ns);
    const std::array<std::pair<const char*, double>, 10> stages{
        {{"uplink", double(received - m.pose_sample_ns)},
         {"pose_wait", double(m.render_start_ns - m.pose_received_ns)},
         {"render", double(m.render_end_ns - m.render_start_ns)},
         {"encode_queue", double(m.encode_start_ns - m.render_end_ns)},
         {"encode", double(m.encode_end_ns - m.encode_start_ns)},
         {"pacing", double(frame.first_send_ns - m.encode_end_ns)},
         {"send", double(frame.last_send_ns - frame.first_send_ns)},
         {"network", double(frame.complete_ns - to_client(frame.last_send_ns))},
         {"decode", double(decoded_ns - frame.complete_ns)},
         {"total", double(decoded_ns - m.pose_sample_ns)}}};
    // Late: decoded more than a frame interval after the display time its pose was predicted for (it missed
    // its slot; the compositor would have reprojected an older frame).
    // Overhead: what is not work or wire (the total less render, encode, decode and the two one-way trips):
    // the pose waiting for a render, the frame waiting for the encoder and for its turn to leave, and the
    // pacing that spreads it.
    const double overhead_ns = stages[1].second + stages[3].second + stages[5].second + stages[6].second;
    const bool late = decoded_ns > m.display_time_ns + 1'000'000'000LL / o_.fps;
    // Frames the node rendered after the client stopped sending poses (in flight at the end of the run)
    // count as decoded, but their latency is the silence's, not the pipeline's.
    const bool after_poses = to_client(m.render_start_ns) > poses_stopped_ns_.load();
    // Why a frame was late, stage by stage (debug level: a few a run under loss).
    if (late && !after_poses && spdlog::should_log(spdlog::level::debug))
      spdlog::debug(
          "frame {} late: pose_wait {:.1f} render {:.1f} encode {:.1f} pacing {:.1f} send {:.1f} network "
          "{:.1f} "
          "decode {:.1f} total {:.1f} ms; {} bytes, {} fragments rebuilt by FEC, {} retransmitted",
          m.frame_id, stages[1].second * 1e-6, stages[2].second * 1e-6, stages[4].second * 1e-6,
          stages[5].second * 1e-6, stages[6].second * 1e-6, stages[7].second * 1e-6, stages[8].second * 1e-6,
          stages[9].second * 1e-6, video_bytes, frame.fec_recovered, frame.retransmitted);
    highest_frame_id_ = std::max(highest_frame_id_.load(), m.frame_id);
    {
      std::lock_guard lock(mutex_);
      if (first_decoded_ns_ == 0) first_decoded_ns_ = decoded_ns;
      last_decoded_ns_ = decoded_ns;
      if (!after_poses) {
        for (const auto& [name, ns] : stages) counts_.latency_ms[name].push_back(ns * 1e-6);
        counts_.latency_ms["overhead"].push_back(overhead_ns * 1e-6);
        pose_age_from_sample_ms_.push_back(double(to_client(m.render_start_ns) - m.pose_sample_ns) * 1e-6);
      }
      ++counts_.frames_decoded;
      counts_.frames_late += late && !after_poses ? 1 : 0;
      counts_.keyframes += m.keyframe ? 1 : 0;
      counts_.video_bytes += video_bytes;
      counts_.fec_recovered_fragments += uint64_t(frame.fec_recovered);
      counts_.retransmitted_fragments += uint64_t(frame.retransmitted);
    }
    // The pose for the next frames is predicted this far ahead: the measured median-ish latency.
    const int64_t previous = latency_estimate_ns();
    latency_estimate_ns_ = std::max<int64_t>(1, int64_t(0.9 * double(previous) + 0.1 * stages[9].second));
    client_.set_decode_ms(float(stages[8].second * 1e-6));
  }

  // Saving a PNG takes tens of milliseconds (un-warping, compressing): on the decode thread it made the
  // frames behind it late. The saver thread takes copies from a queue of four; a frame that finds it full
  // is not saved (counted in the log), the stream never waits.
  void save(const FrameMetadata& m, const DecodedPicture& picture) {
    std::lock_guard lock(save_mutex_);
    if (to_save_.size() >= 4) {
      ++saves_skipped_;
      return;
    }
    to_save_.emplace_back(m, picture);
    save_wake_.notify_one();
  }

  void save_frames() {
    std::unique_lock lock(save_mutex_);
    while (true) {
      save_wake_.wait(lock, [&] { return saver_stopping_ || !to_save_.empty(); });
      if (to_save_.empty()) break;  // stopping, and everything queued is written
      const auto [m, picture] = std::move(to_save_.front());
      to_save_.pop_front();
      lock.unlock();
      const ImageRgba8 image = reconstruct_stereo(picture, m);
      char name[64];
      std::snprintf(name, sizeof(name), "frame-%06llu.png", static_cast<unsigned long long>(m.frame_id));
      const auto path = std::filesystem::path(o_.save_dir) / name;
      try {
        write_png(path, image.width, image.height, image.pixels);
        std::lock_guard counts_lock(mutex_);
        counts_.saved_frames.push_back(path.string());
      } catch (const std::exception& e) {
        spdlog::warn("could not save frame {}: {}", m.frame_id, e.what());
      }
      lock.lock();
    }
    if (saves_skipped_ > 0) spdlog::info("{} frames not saved: the saver was behind", saves_skipped_);
  }

  const ClientOptions& o_;
  FrameQueue& queue_;
  StreamClient& client_;
  mutable std::mutex mutex_;
  ClientReport counts_;                          // the decoder's fields of the report
  std::vector<double> pose_age_from_sample_ms_;  // render start - pose sample, per measured frame
  ReferenceChain chain_;
  DisplayClock display_{1'000'000'000LL / std::max(1, o_.fps), 500'000'000LL / std::max(1, o_.fps)};
  int64_t held_since_ns_ = 0, last_keyframe_request_ns_ = 0;
  std::mutex save_mutex_;
  std::condition_variable save_wake_;
  std::deque<std::pair<FrameMetadata, DecodedPicture>> to_save_;
  bool saver_stopping_ = false;
  uint64_t saves_skipped_ = 0;
  int64_t first_decoded_ns_ = 0, last_decoded_ns_ = 0;
  static constexpr int64_t kUnknownRttNs = 20'000'000;  // before the clock's first exchange
  std::atomic<int64_t> latency_estimate_ns_{0};         // 0: no frame decoded yet
  std::atomic<uint64_t> highest_frame_id_{0};
  std::atomic<int64_t> poses_stopped_ns_{std::numeric_limits<int64_t>::max()};
  std::exception_ptr error_;
  std::thread saver_{o_.save_dir.empty() ? std::thread() : std::thread([this] { save_frames(); })};
  std::thread thread_;  // last: starts once everything above exists
};

// Poses per second at least (a headset's display rate): what "pose interval" means in the report.
constexpr int kPoseRateHz = 90;

int64_t pose_interval_ns(int fps) {
  return 1'000'000'000LL / std::clamp(2 * fps, kPoseRateHz, 480);
}

// The head pose, sampled now and predicted to be displayed after the measured latency; returned for the
// hands, which are placed relative to it.
Pose send_head_pose(StreamClient& client, TracePlayer& trace, uint64_t pose_id, int64_t now, int64_t start,
                    int64_t latency_ns) {
  const Pose head_pose = trace.at(now - start);
  client.send_pose(
      wire::PoseMessage{.pose_id = pose_id,
                        .sample_time_ns = now,
                        .display_time_ns = now + latency_ns,
                        .position = {head_pose.position.x, head_pose.position.y, head_pose.position.z},
                        .orientation = {head_pose.orientation.x, head_pose.orientation.y,
                                        head_pose.orientation.z, head_pose.orientation.w}});
  return head_pose;
}

// What else goes up once a pose interval: the hands (relative to the head pose just sent), the eye gaze.
void send_hands_and_gaze(const ClientOptions& o, StreamClient& client, const Pose& head_pose, int64_t now,
                         int64_t start) {
  if (o.hands) {
    const HandPair hands = o.hands(double(now - start) * 1e-9, head_pose);
    for (size_t side = 0; side < hands.size(); ++side) {
      if (!hands[side]) continue;
      const HandSample& h = *hands[side];
      client.send_hand(
          wire::HandMessage{.time_ns = now,
                            .hand = uint8_t(side + 1),
                            .tracked = h.tracked,
                            .grip = std::clamp(h.grip, 0.0f, 1.0f),
                            .position = {h.pose.position.x, h.pose.position.y, h.pose.position.z},
                            .orientation = {h.pose.orientation.x, h.pose.orientation.y, h.pose.orientation.z,
                                            h.pose.orientation.w}});
    }
  }
  if (o.gaze)
    for (uint16_t axis : {wire::kGazeX, wire::kGazeY})
      client.send_input(wire::InputMessage{
          .time_ns = now, .device = wire::kGaze, .control = axis, .value = (*o.gaze)[axis]});
}

// The room as the client sees it (the report's room fields), from the room states it receives.
class RoomView {
 public:
  explicit RoomView(const ClientOptions& o) : o_(o) {}
  void on_state(const wire::RoomStateMessage& state) {
    {
      std::lock_guard lock(mutex_);
      ++states_;
      members_.clear();
      for (size_t i = 0; i < state.member_count; ++i)
        members_.emplace_back(wire::user_name_view(state.members[i].user));
      // Each event arrives in several states: keep it once.
      const uint32_t seen = events_.empty() ? 0 : events_.back().seq;
      for (size_t i = 0; i < state.event_count; ++i) {
        const wire::RoomEvent& e = state.events[i];
        if (e.seq <= seen) continue;
        events_.push_back(e);
        spdlog::info("room {}: {} {} (slot {})", escape_for_log(o_.room),
                     escape_for_log(wire::user_name_view(e.user)), wire::room_event_name(e.kind), e.slot);
      }
    }
    if (o_.on_room_state) o_.on_room_state(state);
  }
  void fill(ClientReport& report) const {
    std::lock_guard lock(mutex_);
    report.room_states = states_;
    report.room_members = members_;
    report.room_events = events_;
  }

 private:
  const ClientOptions& o_;
  mutable std::mutex mutex_;
  uint64_t states_ = 0;
  std::vector<std::string> members_;
  std::vector<wire::RoomEvent> events_;
};

}  // namespace

HandPair resting_hands(const Pose& head) {
  // Hands 35 cm below the eyes, 30 cm ahead and 20 cm to each side, turned with the head's yaw only.
  const glm::vec3 forward = head.orientation * glm::vec3(0, 0, -1);
  const float yaw = std::atan2(-forward.x, -forward.z);
  const glm::quat turn = glm::angleAxis(yaw, glm::vec3(0, 1, 0));
  HandPair hands;
  for (int side = 0; side < 2; ++side)
    hands[size_t(side)] = HandSample{
        .pose = Pose{.position = head.position + turn * glm::vec3(side == 0 ? -0.2f : 0.2f, -0.35f, -0.3f),
                     .orientation = turn},
        .grip = 0,
        .tracked = true};
  return hands;
}

json ClientReport::to_json() const {
  json latency = json::object();
  for (const auto& [stage, samples] : latency_ms) {
    double sum = 0;
    for (double v : samples) sum += v;
    latency[stage] = {{"p50", percentile(samples, 0.5)},
                      {"p99", percentile(samples, 0.99)},
                      {"mean", samples.empty() ? 0.0 : sum / double(samples.size())}};
  }
  return json{{"session_id", session_id},
              {"node_address", node_address},
              {"frames_sent", frames_sent},
              {"frames_decoded", frames_decoded},
              {"frames_late", frames_late},
              {"frames_lost", frames_lost},
              {"frames_recovered", frames_recovered},
              {"keyframes", keyframes},
              {"fec_recovered_fragments", fec_recovered_fragments},
              {"retransmitted_fragments", retransmitted_fragments},
              {"nacks_sent", nacks_sent},
              {"recovery_requests", recovery_requests},
              {"duration_s", duration_s},
              {"fps", fps},
              {"pose_interval_ms", pose_interval_ms},
              {"pose_datagrams_per_interval",
               {{"mean", pose_datagrams_per_interval_mean}, {"max", pose_datagrams_per_interval_max}}},
              {"uplink_loss", uplink_loss},
              {"frames_displayed_correct", display.slots_new_frame},
              {"frames_held", display.slots_held},
              {"display_slots", display.slots},
              {"frozen_ms", {{"longest", display.frozen_ms_longest}, {"total", display.frozen_ms_total}}},
              {"frames_broken_chain", frames_broken_chain},
              {"chain_repairs", chain_repairs},
              {"bitrate_bps", bitrate_bps},
              {"average_bitrate_bps", duration_s > 0 ? 8.0 * double(video_bytes) / duration_s : 0.0},
              {"rtt_ms", rtt_ms},
              {"latency_ms", latency},
              {"windows", windows_json()},
              {"saved_frames", saved_frames.size()},
              {"room", room_json()}};
}

json ClientReport::windows_json() const {
  json out = json::array();
  for (const ReportWindow& w : windows)
    out.push_back({{"end_s", w.end_s},
                   {"frames_decoded", w.frames_decoded},
                   {"frames_lost", w.frames_lost},
                   {"keyframes", w.keyframes},
                   {"bitrate_bps", w.bitrate_bps}});
  return out;
}

json ClientReport::room_json() const {
  if (room_states == 0) return nullptr;
  json events = json::array();
  for (const wire::RoomEvent& e : room_events) {
    json line{{"seq", e.seq},
              {"kind", wire::room_event_name(e.kind)},
              {"user", std::string(wire::user_name_view(e.user))},
              {"slot", e.slot},
              {"t_ms", double(e.time_ns - room_events.front().time_ns) * 1e-6}};
    if (e.kind == wire::RoomEventKind::kGrab || e.kind == wire::RoomEventKind::kRelease)
      line["object"] = e.object;
    events.push_back(std::move(line));
  }
  return json{{"members", room_members}, {"events", events}, {"states_received", room_states}};
}

namespace {

// The report: the decoder's frames and latencies, the transport's losses and rates, the room.
// Closes a 10 s window: what was decoded, lost and keyframed in it.
class WindowCounter {
 public:
  void close(double end_s, const FrameDecoder& decoder, const StreamClientStats& transport) {
    const uint64_t decoded = decoder.frames_decoded(), keyframes = decoder.keyframes();
    windows_.push_back(ReportWindow{.end_s = end_s,
                                    .frames_decoded = decoded - decoded_,
                                    .frames_lost = transport.frames.frames_lost - lost_,
                                    .keyframes = keyframes - keyframes_,
                                    .bitrate_bps = double(transport.received_bps)});
    decoded_ = decoded;
    keyframes_ = keyframes;
    lost_ = transport.frames.frames_lost;
  }
  std::vector<ReportWindow> windows() const { return windows_; }

 private:
  std::vector<ReportWindow> windows_;
  uint64_t decoded_ = 0, keyframes_ = 0, lost_ = 0;
};

ClientReport make_report(const ControlSession& session, const FrameDecoder& decoder, const RoomView& room,
                         const FrameQueue& queue, const StreamClientStats& transport, double elapsed_s) {
  ClientReport report;
  report.session_id = session.id();
  report.node_address = session.node_address();
  decoder.fill(report);
  room.fill(report);
  report.duration_s = elapsed_s;
  report.frames_lost = transport.frames.frames_lost;
  report.frames_recovered = transport.frames.frames_recovered;
  report.nacks_sent = transport.nacks_sent;
  report.recovery_requests = transport.keyframe_requests;
  // Frames the node sent: the transport's count (delivered + lost) can trail the decoder by a report
  // interval; frame ids are consecutive from 0, so the highest one decoded bounds it from below.
  report.frames_sent = std::max<uint64_t>(transport.frames.frames_delivered + transport.frames.frames_lost,
                                          report.frames_decoded > 0 ? decoder.highest_frame_id() + 1 : 0);
  report.frames_late += queue.dropped();
  report.rtt_ms = double(transport.rtt_ns) * 1e-6;
  report.bitrate_bps = double(transport.received_bps);
  return report;
}

}  // namespace

ClientReport run_client(const ClientOptions& o, const std::atomic<bool>& stop) {
  if (o.duration_s <= 0 || o.duration_s > 86400) throw_invalid_input("--duration must be 0 to 86400 seconds");
  if (o.save_every < 1) throw_invalid_input("--save-every must be at least 1");
  // The rules the control plane applies (core/session_shape.hpp), checked before any request: a clear
  // message naming the flag instead of a refusal from the server.
  if (const auto problem = session_shape_problem(
          SessionShape{.scene = o.scene,
                       .eye_width = o.eye_width,
                       .eye_height = o.eye_height,
                       .fps = o.fps,
                       .codec = o.codec,
                       .room = o.room.empty() ? std::nullopt : std::optional<std::string>(o.room)}))
    throw_invalid_input(problem->message);
  TracePlayer trace(o.trace.empty()
                        ? synthetic_trace(SyntheticTraceOptions{.duration_s = std::max(10.0, o.duration_s),
                                                                .rate_hz = 90,
                                                                .seed = 7,
                                                                .eye_height_m = 1.6f,
                                                                .ipd = kDefaultIpdMetres,
                                                                .mean_turn_interval_s = 2.5})
                        : load_trace(o.trace));
  if (!o.save_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.save_dir, ec);
    if (ec) throw_runtime("cannot create " + o.save_dir + ": " + ec.message());
  }

  // 1. The session on the control plane; 2. the stream: the network thread queues complete frames, the
  // decode thread decodes and measures them.
  const ControlSession session(o);
  RoomView room(o);
  FrameQueue queue;
  StreamClient client(
      StreamClientConfig{
          .server = o.via.empty() ? session.node_address() : o.via,
          .session_id = udp_session_id(session.id()),
          .key = SessionKey::from_hex(session.key_hex()),
          .fps = o.fps,
          .initial_bitrate_bps = 8'000'000,
          .on_room_state = [&room](const wire::RoomStateMessage& state) { room.on_state(state); }},
      [&queue](const AssembledFrame& f) { queue.push(f); });
  FrameDecoder decoder(o, queue, client);

  // 3. Poses up at a headset's display rate or twice the frame rate, whichever is higher (at least 90 Hz):
  // the node renders on its own clock, and a fresh pose is waiting for it when it starts a frame. Each
  // datagram carries the three newest samples, so a lost one costs no sample. When the server reports the
  // uplink losing datagrams in bursts, the head pose goes up in up to four datagrams an interval (each a
  // fresh sample; streaming/uplink_loss.hpp): a burst of lost datagrams then lasts less time. Hands and gaze
  // stay at one an interval. The session's state is checked once a second.
  std::string failure;
  SessionWatcher watcher(session);
  // Samples leave on time, as a headset's tracking thread's do, ahead of this machine's busy threads (the
  // decoder's among them: it started before, so it keeps the ordinary class).
  std::optional<RealtimeScheduling> realtime(std::in_place);  // for the sampling loop only
  if (!realtime->granted()) spdlog::debug("pose sampling at ordinary priority (no CAP_SYS_NICE)");
  const int64_t start = steady_now_ns();
  const int64_t interval = pose_interval_ns(o.fps);
  int64_t next = start, last_check = start, last_progress = start, last_window = start;
  uint64_t pose_id = 0, last_decoded = 0, intervals = 0, pose_datagrams = 0;
  int per_interval = 1, sub_tick = 0, most_per_interval = 1;
  WindowCounter windows;
  while (!stop && failure.empty()) {
    const int64_t now = steady_now_ns();
    if (double(now - start) * 1e-9 >= o.duration_s) break;
    const Pose head_pose =
        send_head_pose(client, trace, ++pose_id, now, start, decoder.latency_estimate_ns());
    ++pose_datagrams;
    if (sub_tick == 0) {
      ++intervals;
      send_hands_and_gaze(o, client, head_pose, now, start);
      const StreamClientStats link = client.stats();
      per_interval = link.uplink_measured
                         ? pose_datagrams_per_interval(link.uplink_loss, link.uplink_burst_mean)
                         : kMaxPoseDatagrams;  // until the server has counted a window, assume the worst
      most_per_interval = std::max(most_per_interval, per_interval);
    }
    sub_tick = (sub_tick + 1) % per_interval;
    if (now - last_check >= 1'000'000'000LL) {
      last_check = now;
      const uint64_t decoded = decoder.frames_decoded();
      if (decoded != last_decoded) last_progress = now;
      last_decoded = decoded;
      failure = watcher.failure();
      if (failure.empty() && now - last_progress > 10'000'000'000LL)
        failure = "no frames decoded for 10 s (node " + session.node_address() + ")";
    }
    if (now - last_window >= 10'000'000'000LL) {
      last_window = now;
      windows.close(double(now - start) * 1e-9, decoder, client.stats());
    }
    next += interval / per_interval;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<int64_t>(0, next - steady_now_ns())));
  }
  realtime.reset();  // the rest (waiting, stopping, the report) at ordinary priority
  const double elapsed = double(steady_now_ns() - start) * 1e-9;
  decoder.poses_stopped(steady_now_ns());
  // Frames in flight when the poses stop still count: give them a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const StreamClientStats transport = client.stats();
  decoder.stop();
  session.end();
  decoder.rethrow();
  if (!failure.empty()) throw_runtime(failure);
  ClientReport report = make_report(session, decoder, room, queue, transport, elapsed);
  report.windows = windows.windows();
  report.pose_interval_ms = double(interval) * 1e-6;
  report.pose_datagrams_per_interval_mean = intervals == 0 ? 0.0 : double(pose_datagrams) / double(intervals);
  report.pose_datagrams_per_interval_max = most_per_interval;
  report.uplink_loss = transport.uplink_loss;
  return report;
}

}  // namespace kairo

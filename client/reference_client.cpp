#include "client/reference_client.hpp"
#include "core/names.hpp"
#include "core/session_shape.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/frame_reconstruction.hpp"
#include "control-plane/api_json.hpp"
#include "control-plane/http_client.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/image_io.hpp"
#include "core/percentile.hpp"
#include "core/synthetic_trace.hpp"
#include "core/trace.hpp"
#include "streaming/stream_client.hpp"

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
              {"duration_s", duration_s},
              {"fps", fps},
              {"bitrate_bps", bitrate_bps},
              {"rtt_ms", rtt_ms},
              {"latency_ms", latency},
              {"saved_frames", saved_frames.size()},
              {"room", room_json()}};
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

ClientReport run_client(const ClientOptions& o, const std::atomic<bool>& stop) {
  if (o.duration_s <= 0 || o.duration_s > 86400) throw_invalid_input("--duration must be 0 to 86400 seconds");
  if (o.save_every < 1) throw_invalid_input("--save-every must be at least 1");
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
  const control::ControlUrl url = control::parse_control_url(o.control_url);
  const control::HttpClientOptions http{.timeout_s = 10, .ca_file = o.ca_file};
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

  // 1. Log in and create the session.
  v1::LoginRequest login;
  login.set_username(o.user);
  login.set_password(o.password);
  auto r = control::http_request(url, "POST", "/v1/auth/login", control::to_json(login), "", http);
  if (r.status != 200) throw_invalid_input("login refused: " + api_error(r));
  v1::TokenPair tokens;
  control::parse_answer(r.body, tokens);
  const std::string token = tokens.access_token();
  v1::SessionRequest request;
  request.set_scene(o.scene);
  request.set_eye_width(o.eye_width);
  request.set_eye_height(o.eye_height);
  request.set_fps(o.fps);
  request.set_codec(o.codec);
  if (!o.room.empty()) request.set_room(o.room);
  r = control::http_request(url, "POST", "/v1/sessions", control::to_json(request), token, http);
  if (r.status != 201) throw_runtime("session refused: " + api_error(r));
  v1::Session session;
  control::parse_answer(r.body, session);
  ClientReport report;
  report.session_id = session.session_id();
  report.node_address = session.node_address();
  spdlog::info("session {} placed on {}", escape_for_log(report.session_id.substr(0, 8)),
               escape_for_log(report.node_address));

  // 2. Stream: the network thread queues complete frames, the decode thread decodes and measures them.
  std::mutex mutex;
  std::condition_variable wake;
  std::array<ReceivedFrame, 16> queue;  // ring; buffers grow once and are reused
  size_t head = 0, count = 0;
  uint64_t dropped = 0;
  bool decoding_done = false;
  StreamClient* client_ptr = nullptr;
  std::atomic<int64_t> latency_estimate_ns{50'000'000};
  std::atomic<int64_t> first_decoded_ns{0}, last_decoded_ns{0};
  std::atomic<uint64_t> highest_frame_id{0};
  std::mutex room_mutex;  // guards the report's room fields (written on the network thread)

  StreamClient client(
      StreamClientConfig{
          .server = o.via.empty() ? report.node_address : o.via,
          .session_id = udp_session_id(report.session_id),
          .key = SessionKey::from_hex(session.session_key()),
          .fps = o.fps,
          .deadline_ns = 0,
          .mtu = wire::kDefaultMtu,
          .initial_bitrate_bps = 8'000'000,
          .on_room_state =
              [&](const wire::RoomStateMessage& state) {
                {
                  std::lock_guard lock(room_mutex);
                  ++report.room_states;
                  report.room_members.clear();
                  for (size_t i = 0; i < state.member_count; ++i)
                    report.room_members.emplace_back(wire::user_name_view(state.members[i].user));
                  // Each event arrives in several states: keep it once.
                  const uint32_t seen = report.room_events.empty() ? 0 : report.room_events.back().seq;
                  for (size_t i = 0; i < state.event_count; ++i) {
                    const wire::RoomEvent& e = state.events[i];
                    if (e.seq <= seen) continue;
                    report.room_events.push_back(e);
                    spdlog::info("room {}: {} {} (slot {})", escape_for_log(o.room),
                                 escape_for_log(wire::user_name_view(e.user)), wire::room_event_name(e.kind),
                                 e.slot);
                  }
                }
                if (o.on_room_state) o.on_room_state(state);
              }},
      [&](const AssembledFrame& f) {
        std::lock_guard lock(mutex);
        if (count == queue.size()) {
          ++dropped;  // the decoder fell 16 frames behind: drop the newest rather than block the network
          return;
        }
        ReceivedFrame& slot = queue[(head + count) % queue.size()];
        slot.data.assign(f.data.begin(), f.data.end());
        slot.first_send_ns = f.first_send_ns;
        slot.last_send_ns = f.last_send_ns;
        slot.complete_ns = f.complete_ns;
        slot.fec_recovered = f.fec_recovered;
        slot.retransmitted = f.retransmitted;
        ++count;
        wake.notify_one();
      });
  client_ptr = &client;

  const Codec codec = parse_codec(o.codec);
  std::exception_ptr decode_error;
  std::thread decoder_thread([&] {
    try {
      VideoDecoder decoder(codec);
      DecodedPicture picture;
      ReceivedFrame frame;
      uint64_t decoded_index = 0;
      for (;;) {
        {
          std::unique_lock lock(mutex);
          wake.wait(lock, [&] { return count > 0 || decoding_done; });
          if (count == 0) return;
          std::swap(frame, queue[head]);
          head = (head + 1) % queue.size();
          --count;
        }
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
        if (!got) continue;
        if (first_decoded_ns == 0) first_decoded_ns = decoded_ns;
        last_decoded_ns = decoded_ns;
        auto to_client = [&](int64_t node_ns) { return client_ptr->server_to_client_ns(node_ns); };
        const int64_t received = to_client(m->pose_received_ns);
        const std::array<std::pair<const char*, double>, 10> stages{
            {{"uplink", double(received - m->pose_sample_ns)},
             {"pose_wait", double(m->render_start_ns - m->pose_received_ns)},
             {"render", double(m->render_end_ns - m->render_start_ns)},
             {"encode_queue", double(m->encode_start_ns - m->render_end_ns)},
             {"encode", double(m->encode_end_ns - m->encode_start_ns)},
             {"pacing", double(frame.first_send_ns - m->encode_end_ns)},
             {"send", double(frame.last_send_ns - frame.first_send_ns)},
             {"network", double(frame.complete_ns - to_client(frame.last_send_ns))},
             {"decode", double(decoded_ns - frame.complete_ns)},
             {"total", double(decoded_ns - m->pose_sample_ns)}}};
        // Late: decoded more than a frame interval after the display time its pose was predicted for (it
        // missed its slot; the compositor would have reprojected an older frame).
        const bool late = decoded_ns > m->display_time_ns + 1'000'000'000LL / o.fps;
        highest_frame_id = std::max(highest_frame_id.load(), m->frame_id);
        {
          std::lock_guard lock(mutex);
          for (const auto& [name, ns] : stages) report.latency_ms[name].push_back(ns * 1e-6);
          ++report.frames_decoded;
          report.frames_late += late ? 1 : 0;
          report.keyframes += m->keyframe ? 1 : 0;
          report.fec_recovered_fragments += uint64_t(frame.fec_recovered);
          report.retransmitted_fragments += uint64_t(frame.retransmitted);
        }
        // The pose for the next frames is predicted this far ahead: the measured median-ish latency.
        latency_estimate_ns = int64_t(0.9 * double(latency_estimate_ns) + 0.1 * stages[9].second);
        client_ptr->set_decode_ms(float(stages[8].second * 1e-6));
        if (o.on_decoded) o.on_decoded(*m, picture, au.size());
        if (!o.save_dir.empty() && decoded_index % uint64_t(o.save_every) == 0) {
          const ImageRgba8 image = reconstruct_stereo(picture, *m);
          char name[64];
          std::snprintf(name, sizeof(name), "frame-%06llu.png", static_cast<unsigned long long>(m->frame_id));
          const auto path = std::filesystem::path(o.save_dir) / name;
          write_png(path, image.width, image.height, image.pixels);
          std::lock_guard lock(mutex);
          report.saved_frames.push_back(path.string());
        }
        ++decoded_index;
      }
    } catch (...) {
      decode_error = std::current_exception();
    }
  });
  auto stop_decoder = [&] {
    {
      std::lock_guard lock(mutex);
      decoding_done = true;
    }
    wake.notify_all();
    if (decoder_thread.joinable()) decoder_thread.join();
  };

  // 3. Poses; the session's state checked once a second.
  std::string failure;
  const int64_t start = steady_now_ns();
  // Poses go up at twice the display rate (at least 60 Hz): the node renders on its own clock, and a fresher
  // pose is waiting for it when it starts a frame.
  const int pose_rate = std::clamp(2 * o.fps, 60, 480);
  const int64_t interval = 1'000'000'000LL / pose_rate;
  int64_t next = start, last_check = start, last_progress = start;
  uint64_t pose_id = 0, last_decoded = 0;
  while (!stop) {
    const int64_t now = steady_now_ns();
    if (double(now - start) * 1e-9 >= o.duration_s) break;
    const Pose head_pose = trace.at(now - start);
    wire::PoseMessage pose{.pose_id = ++pose_id,
                           .sample_time_ns = now,
                           .display_time_ns = now + latency_estimate_ns.load(),
                           .position = {head_pose.position.x, head_pose.position.y, head_pose.position.z},
                           .orientation = {head_pose.orientation.x, head_pose.orientation.y,
                                           head_pose.orientation.z, head_pose.orientation.w}};
    client.send_pose(pose);
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
                              .orientation = {h.pose.orientation.x, h.pose.orientation.y,
                                              h.pose.orientation.z, h.pose.orientation.w}});
      }
    }
    if (o.gaze)
      for (uint16_t axis : {wire::kGazeX, wire::kGazeY})
        client.send_input(wire::InputMessage{
            .time_ns = now, .device = wire::kGaze, .control = axis, .value = (*o.gaze)[axis]});
    if (now - last_check >= 1'000'000'000LL) {
      last_check = now;
      uint64_t decoded;
      {
        std::lock_guard lock(mutex);
        decoded = report.frames_decoded;
      }
      if (decoded != last_decoded) last_progress = now;
      last_decoded = decoded;
      try {
        const auto s =
            control::http_request(url, "GET", "/v1/sessions/" + report.session_id, "", token, http);
        if (s.status == 200) {
          v1::Session state;
          control::parse_answer(s.body, state);
          if (state.state() == "failed") {
            failure = "the session failed: " +
                      (state.has_failure_reason() ? state.failure_reason() : std::string("no reason given"));
            break;
          }
          if (state.state() == "ended") {
            failure = "the session was ended by the control plane";
            break;
          }
        }
      } catch (const std::exception& e) {
        spdlog::warn("session status: {}", e.what());
      }
      if (now - last_progress > 10'000'000'000LL) {
        failure = "no frames decoded for 10 s (node " + report.node_address + ")";
        break;
      }
    }
    next += interval;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<int64_t>(0, next - steady_now_ns())));
  }
  const int64_t poses_ended = steady_now_ns();
  const double elapsed = double(poses_ended - start) * 1e-9;
  // Frames in flight when the poses stop still count: give them a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const StreamClientStats transport = client.stats();
  stop_decoder();
  try {
    control::http_request(url, "DELETE", "/v1/sessions/" + report.session_id, "", token, http);
  } catch (const std::exception& e) {
    spdlog::warn("could not end the session: {}", e.what());
  }
  if (decode_error) std::rethrow_exception(decode_error);
  if (!failure.empty()) throw_runtime(failure);

  report.duration_s = elapsed;
  report.frames_lost = transport.frames.frames_lost;
  report.frames_recovered = transport.frames.frames_recovered;
  // Frames the node sent: the transport's count (delivered + lost) can trail the decoder by a report
  // interval; frame ids are consecutive from 0, so the highest one decoded bounds it from below.
  report.frames_sent = std::max<uint64_t>(transport.frames.frames_delivered + transport.frames.frames_lost,
                                          report.frames_decoded > 0 ? highest_frame_id + 1 : 0);
  report.frames_late += dropped;
  // The frame rate once streaming: between the first and last decoded frames (set-up time excluded).
  report.fps = last_decoded_ns > first_decoded_ns
                   ? double(report.frames_decoded - 1) / (double(last_decoded_ns - first_decoded_ns) * 1e-9)
                   : 0.0;
  report.rtt_ms = double(transport.rtt_ns) * 1e-6;
  report.bitrate_bps = double(transport.received_bps);
  std::lock_guard lock(room_mutex);  // the stream client is still alive: its thread may be in the callback
  return report;
}

}  // namespace kairo

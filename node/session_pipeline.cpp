#include "node/session_pipeline.hpp"
#include "core/session_shape.hpp"
#include "node/frame_handoff.hpp"
#include "node/frame_stage.hpp"
#include "node/session_inbox.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/foveation.hpp"
#include "core/log_format.hpp"
#include "node/node_metrics.hpp"
#include "node/pose_predictor.hpp"
#include "node/quality_controller.hpp"
#include "node/room.hpp"
#include "node/session_recorder.hpp"
#include "renderer/stereo_renderer.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/session_transport.hpp"

namespace kairo {

namespace {

// What the render thread hands the encode thread: the rendered frame (its slot stays owned until the render
// thread releases it) and everything the encoder and the client need to know about it.
struct EncodeJob {
  StageRendered rendered;  // the frame (its slot held until released) and its metadata so far
  QualitySettings settings;
};

double ms_between(int64_t from_ns, int64_t to_ns) {
  return double(to_ns - from_ns) * 1e-6;
}

}  // namespace

struct SessionPipeline::Impl {
  SessionSpec spec;
  PipelineOptions options;
  NodeMetrics& metrics;
  std::unique_ptr<FrameStage> stage;  // render -> NV12 -> encode -> metadata (node/frame_stage.hpp)
  // The inbox before the transport: the transport delivers into it until it is destroyed.
  std::unique_ptr<SessionInbox> inbox;
  std::unique_ptr<SessionTransport> transport;
  std::string backend;
  std::string metrics_label;  // the session's label on its per-session metrics: its id's first 8 digits

  std::atomic<bool> stopping{false}, done{false}, has_failed{false};
  mutable std::mutex mutex;  // guards: reason, caps, stats (never held across a wait)
  std::string finish_reason;
  std::optional<int64_t> max_bitrate_bps;
  std::optional<int> max_fps;
  std::optional<bool> foveation;
  bool caps_changed = false;
  SessionPipelineStats stats;
  FrameHandoff<EncodeJob, const RenderedFrame*> handoff{4};  // render -> encode, and frames back
  std::vector<const RenderedFrame*> returned;                // render thread's: frames to release
  std::thread render_thread, encode_thread;
  std::unique_ptr<SessionRecorder> recorder;  // render thread only, but recovery_encode(): encode thread
  TransportKind transport_kind = TransportKind::kUdp;
  TransportCounters counted{};  // what account_transport() has already added to the node's metrics
  // Rooms: the seat, and the render thread's buffers for the room's draws and state (no allocation).
  std::shared_ptr<Room> room;
  RoomSeat seat;
  std::array<DynamicDraw, Room::kMaxDraws> room_draws{};
  wire::RoomStateMessage room_state{};
  std::array<uint8_t, wire::RoomStateMessage::kMaxSize> room_bytes{};
  uint64_t sent_room_version = 0, sent_membership_version = 0;
  int64_t last_room_state_ns = 0;
  uint32_t recorded_room_event = 0;
  std::vector<wire::InputMessage> inputs;  // render thread: this tick's input events (capacity kept)

  void leave_room() {
    if (room) room->leave(seat, steady_now_ns());
  }

  // The room's state to the client: promptly when someone joins, leaves, grabs or releases (at most every
  // 50 ms), every 200 ms while objects move, and once a second regardless (a lost one is repaired by the
  // next; a reconnecting client is current with the first).
  void publish_room_state(int64_t now) {
    const uint64_t membership = room->membership_version(), version = room->version();
    const int64_t since = now - last_room_state_ns;
    const bool due = (membership != sent_membership_version && since >= 50'000'000) ||
                     (version != sent_room_version && since >= 200'000'000) || since >= 1'000'000'000;
    if (!due) return;
    room->state_for(seat.slot, now, room_state);
    transport->send_room_state(std::span(room_bytes.data(), wire::write(room_state, room_bytes)));
    sent_room_version = room_state.version;
    sent_membership_version = membership;
    last_room_state_ns = now;
    for (size_t i = 0; i < room_state.event_count; ++i) {
      const wire::RoomEvent& e = room_state.events[i];
      if (e.seq <= recorded_room_event) continue;
      recorded_room_event = e.seq;
      if (recorder) recorder->room_event(e);
    }
  }

  void account_transport(const TransportCounters& t) {
    metrics.count_frame(FrameOutcome::kDropped, transport_kind, t.frames_dropped - counted.frames_dropped);
    metrics.add_datagrams(DatagramKind::kSent, t.packets_sent - counted.packets_sent);
    metrics.add_datagrams(DatagramKind::kRetransmitted, t.retransmitted - counted.retransmitted);
    metrics.add_datagrams(DatagramKind::kFec, t.fec_packets - counted.fec_packets);
    metrics.add_datagrams(DatagramKind::kLost, t.client_lost - std::min(t.client_lost, counted.client_lost));
    const auto rejected = [&](OpenResult r) { return t.rejected[size_t(r)] - counted.rejected[size_t(r)]; };
    metrics.add_rejected(Rejection::kMalformed, rejected(OpenResult::kMalformed));
    metrics.add_rejected(Rejection::kWrongSession, rejected(OpenResult::kWrongSession));
    metrics.add_rejected(Rejection::kForged, rejected(OpenResult::kForged));
    metrics.add_rejected(Rejection::kReplayed, rejected(OpenResult::kReplayed));
    metrics.add_rejected(Rejection::kStale, rejected(OpenResult::kStale));
    metrics.add_rejected(Rejection::kInboxFull, t.inbox_dropped - counted.inbox_dropped);
    metrics.add_path_events(PathEvent::kChallengeSent, t.path_challenges - counted.path_challenges);
    metrics.add_path_events(PathEvent::kValidated, t.paths_validated - counted.paths_validated);
    metrics.add_path_events(PathEvent::kAmplificationLimited,
                            t.amplification_limited - counted.amplification_limited);
    metrics.add_path_events(PathEvent::kRetransmissionSuppressed,
                            t.retransmissions_suppressed - counted.retransmissions_suppressed);
    const uint64_t answered = t.keyframe_requests_answered - counted.keyframe_requests_answered;
    metrics.add_keyframe_requests(t.keyframe_requests - counted.keyframe_requests - answered, answered);
    counted = t;
  }

  Impl(const SessionSpec& s, NodeMetrics& n, const PipelineOptions& o)
      : spec(s),
        options(o),
        metrics(n),
        metrics_label(s.id.substr(0, 8)),
        max_bitrate_bps(s.max_bitrate_bps),
        max_fps(s.max_fps),
        foveation(s.foveation) {
    inputs.reserve(256);
    returned.reserve(4);
  }

  void finish(const std::string& why, bool failure) {
    {
      std::lock_guard lock(mutex);
      if (done) return;
      finish_reason = why;
    }
    has_failed = failure;
    done = true;
    stopping = true;
    handoff.close();
    if (failure)
      spdlog::warn("session {} failed: {}", spec.id.substr(0, 8), why);
    else
      spdlog::info("session {} ended: {}", spec.id.substr(0, 8), why);
  }

  void render_loop() {
    try {
      render_frames();
    } catch (const std::exception& e) {
      finish(std::string("render: ") + e.what(), true);
    }
    leave_room();  // the others stop seeing this member now, not when the node tears the session down
    if (recorder) {
      std::lock_guard lock(mutex);
      recorder->ended(steady_now_ns(), finish_reason.empty() ? "the node ended the session" : finish_reason,
                      has_failed);
    }
  }

  // The render thread's own state between ticks.
  struct RenderState {
    PosePredictor predictor;
    std::optional<QualityController> quality;
    std::array<Fov, 2> fovs{symmetric_fov(kDefaultFovDegrees), symmetric_fov(kDefaultFovDegrees)};
    int64_t started_ns = 0, next_tick_ns = 0, last_quality_ns = 0;
    int64_t phase_step_ns = 0;  // the render clock's move at the next tick (follow_client_clock)
    uint64_t last_pose_id = 0, frame_id = 0;
    bool have_pose = false;
    double render_ms = 0, encode_ms_seen = 0;
    glm::vec2 gaze{0.0f};  // foveation centre: the client's gaze when it sends one, else the image centre
  };

  QualityCaps caps_now() const {
    const int fps_cap = std::clamp(max_fps.value_or(spec.fps), 1, spec.fps);
    return QualityCaps{.max_bitrate_bps = max_bitrate_bps,
                       .max_fps = fps_cap,
                       .min_fps = std::min(fps_cap, std::max(10, spec.fps / 3)),
                       .foveation_available = options.foveation && foveation.value_or(true),
                       .picture_ceiling_bpp = options.picture_ceiling_bpp};
  }

  // The render loop, one step a line: wait for the tick, check the client, take its pose, adjust quality,
  // read its inputs, render, hand the frame to the encoder.
  void render_frames() {
    RenderState r;
    r.quality.emplace(caps_now(), spec.eye_width, spec.eye_height, options.initial_bitrate_bps);
    r.started_ns = r.next_tick_ns = steady_now_ns();
    while (!stopping) {
      wait_for_tick(r);
      release_returned_frames();
      const TransportFeedback link = transport->feedback();
      const int64_t t = steady_now_ns();
      follow_client_clock(r, link);
      if (!client_alive(r, link, t)) return;
      if (link.last_client_ns == 0) continue;  // not connected yet
      if (room) publish_room_state(t);
      wait_for_fresh_pose(r);
      const auto received = inbox->latest_pose();
      if (!received) continue;  // nothing to render for yet
      take_pose(r, received->pose);
      if (t - r.last_quality_ns >= 100'000'000) update_quality(r, link, t);  // ten times a second
      apply_inputs(r);
      if (stage->free_slots() == 0) continue;  // the encoder holds every slot: skip this tick
      EncodeJob next = render_frame(r, *received);
      if (!hand_to_encoder(r, next)) return;
      ++r.frame_id;
    }
  }

  // Sleeps until the next frame at the current frame rate; after a stall it does not try to catch up.
  void wait_for_tick(RenderState& r) {
    const int64_t interval = 1'000'000'000LL / std::max(1, r.quality->settings().fps);
    r.next_tick_ns += interval + r.phase_step_ns;
    const int64_t now = steady_now_ns();
    if (r.next_tick_ns < now - interval) r.next_tick_ns = now;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<int64_t>(0, r.next_tick_ns - now)));
  }

  // Render on the client's clock: the client reports how far before where they should be in its display
  // slots frames become ready (early in the slot: DisplayClock::phase_error_ns); the render clock moves by an
  // eighth of that per frame, at most a millisecond, so that frames land there and their jitter still makes
  // the slot (WiVRn and ALVR pace rendering from the client's timing alike). Small errors are left alone:
  // the report lags by its interval and the frames in flight.
  void follow_client_clock(RenderState& r, const TransportFeedback& link) {
    const int64_t error = link.display_phase_error_ns;
    r.phase_step_ns = std::abs(error) < 2'000'000 ? 0 : std::clamp<int64_t>(error / 8, -1'000'000, 1'000'000);
  }

  // Renders on the client's clock: its next pose is due within one pose interval, so the frame starts as it
  // lands rather than on the node's free-running tick with a pose that has waited up to an interval (the
  // frame rate stays the tick's: the next tick is not moved). A lost pose costs at most that interval.
  void wait_for_fresh_pose(const RenderState& r) {
    const int64_t interval = inbox->pose_interval_ns();
    const auto latest = inbox->latest_pose();
    if (!r.have_pose || interval <= 0 || !latest) return;
    const int64_t now = steady_now_ns();
    if (now - latest->received_ns < 1'000'000) return;  // it has just landed
    // The next is due an interval after the latest; a millisecond of slack, half a frame at most.
    const int64_t frame_interval = 1'000'000'000LL / std::max(1, r.quality->settings().fps);
    inbox->wait_for_pose_after(
        latest->pose.pose_id, std::min(latest->received_ns + interval + 1'000'000, now + frame_interval / 2));
  }

  // Liveness: the client's messages are the session's heartbeat. False when the session is over (and
  // finished with the reason).
  bool client_alive(const RenderState& r, const TransportFeedback& link, int64_t t) {
    if (link.last_client_ns == 0) {
      if (ms_between(r.started_ns, t) <= options.connect_timeout_s * 1000.0) return true;
      finish("the client never connected", true);
      return false;
    }
    if (ms_between(link.last_client_ns, t) <= options.client_timeout_s * 1000.0) return true;
    finish("the client stopped responding", false);
    return false;
  }

  // A new pose feeds the predictor (and the recording); the same pose again changes nothing.
  void take_pose(RenderState& r, const wire::PoseMessage& p) {
    if (r.have_pose && p.pose_id == r.last_pose_id) return;
    const Pose head = pose_from_arrays(p.position, p.orientation);  // read_pose refused bad values
    r.predictor.add(p.sample_time_ns, head);
    r.last_pose_id = p.pose_id;
    r.have_pose = true;
  }

  // The quality controller's inputs (link, caps, stage times) in, its decisions out: logged, counted,
  // recorded. Also the moment the transport's counters go to the node's metrics.
  void update_quality(RenderState& r, const TransportFeedback& link, int64_t t) {
    r.last_quality_ns = t;
    {
      std::lock_guard lock(mutex);
      r.encode_ms_seen = stats.encode_ms;
      if (caps_changed) {
        r.quality->set_caps(caps_now());
        caps_changed = false;
      }
    }
    const auto& decisions =
        r.quality->update(QualityInputs{.now_ns = t,
                                        .transport_target_bps = link.target_bitrate_bps,
                                        .loss = link.loss,
                                        .client_decode_ms = link.client_decode_ms,
                                        .slowest_stage_ms = std::max(r.render_ms, r.encode_ms_seen)});
    for (const QualityDecision& d : decisions) {
      // Bitrate follows the estimate several times a second: debug level; structural changes: info.
      spdlog::log(d.knob == "bitrate" ? spdlog::level::debug : spdlog::level::info,
                  "session {} quality: {} {} -> {} ({})", spec.id.substr(0, 8), d.knob, d.from, d.to,
                  d.reason);
      metrics.quality_decision(d.knob, d.reason);
      if (recorder) recorder->decision(t, d);
    }
    metrics.set_rtt_seconds(link.rtt_ms * 1e-3);
    metrics.set_session_target(metrics_label, r.quality->settings().bitrate_bps,
                               bitrate_limit_name(r.quality->settings().limited_by));
    account_transport(transport->counters());
  }

  // Input events since the last tick: the eye gaze moves the fovea.
  void apply_inputs(RenderState& r) {
    inbox->take_inputs(inputs);
    for (const wire::InputMessage& input : inputs)
      if (input.device == wire::kGaze && input.control <= wire::kGazeY)
        r.gaze[input.control] = std::clamp(input.value, -1.0f, 1.0f);
  }

  // Renders the predicted view (and the room as it is now) at the coded size and foveation the quality
  // controller chose; returns the encode job with the frame's metadata so far.
  EncodeJob render_frame(RenderState& r, const ReceivedPose& received) {
    const wire::PoseMessage& p = received.pose;
    const QualitySettings q = r.quality->settings();
    const float strength = options.fixed_foveation > 0 ? options.fixed_foveation : q.foveation;
    // The room as it is now: anything the node applied before this instant is in this frame.
    const int64_t scene_time = steady_now_ns();
    uint64_t room_version = 0;
    const size_t room_draw_count = room ? room->draws_for(seat.slot, room_draws, room_version) : 0;
    EncodeJob next;
    next.settings = q;
    // Validated (a unit quaternion, kept bit for bit once unit) as a trace line read back would be.
    const Pose head = validated_pose(r.predictor.predict(p.display_time_ns));
    const FrameSettings settings{.foveation = strength,
                                 .gaze = r.gaze,
                                 .resolution_scale = q.resolution_scale,
                                 .bitrate_bps = q.bitrate_bps,
                                 .fps = q.fps};
    // Recorded as rendered, so that `kairo replay` of the recording makes these very frames.
    if (recorder) recorder->frame(p.sample_time_ns, head, settings);
    next.rendered =
        stage->render(r.frame_id, stereo_view_from_head(head, kDefaultIpdMetres, r.fovs), settings,
                      std::span<const DynamicDraw>(room_draws.data(), room_draw_count), scene_time);
    const RenderedFrame& frame = *next.rendered.frame;
    metrics.count_frame(FrameOutcome::kRendered, transport_kind);
    r.render_ms = 0.8 * r.render_ms + 0.2 * ms_between(frame.submitted_ns, frame.completed_ns);
    metrics.observe_stage(Stage::kPoseWait, double(scene_time - received.received_ns) * 1e-9);
    metrics.observe_stage(Stage::kRender, double(frame.completed_ns - scene_time) * 1e-9);
    FrameMetadata& m = next.rendered.metadata;
    m.pose_id = p.pose_id;
    m.pose_sample_ns = p.sample_time_ns;
    m.display_time_ns = p.display_time_ns;
    m.pose_received_ns = received.received_ns;
    m.room_version = room_version;
    return next;
  }

  // One frame waits for the encoder at most (back-pressure: a rendered frame is never thrown away). False
  // when the session stopped meanwhile.
  bool hand_to_encoder(const RenderState& r, const EncodeJob& next) {
    if (!handoff.put(next)) {
      stage->discard(next.rendered);
      return false;
    }
    std::lock_guard lock(mutex);
    stats.frames_rendered = r.frame_id + 1;
    stats.render_ms = r.render_ms;
    return true;
  }

  void release_returned_frames() {
    handoff.take_returned(returned);
    for (const RenderedFrame* f : returned) stage->release(*f);
  }

  void encode_loop() {
    try {
      encode_frames();
    } catch (const std::exception& e) {
      finish(std::string("encode: ") + e.what(), true);
    }
  }

  void encode_frames() {
    bool first = true;
    double encode_ms = 0;
    while (std::optional<EncodeJob> taken = handoff.take()) {
      const EncodeJob& work = *taken;
      const FrameMetadata& m = work.rendered.metadata;
      const QualitySettings& applied = work.settings;
      // A client's loss: an encoder refreshing continuously repairs it by itself; else it stops predicting
      // from the lost frame where it can (the next frame is a repair); else this frame is a keyframe
      // (node/frame_stage.cpp).
      const std::optional<RecoveryRequest> recovery =
          first ? std::nullopt : transport->take_recovery_request();
      const bool requested = recovery.has_value();
      const bool keyframe = first || (requested && !recovery->first_lost);
      const std::optional<uint64_t> recover_from = requested ? recovery->first_lost : std::nullopt;
      const bool speculative = requested && recovery->speculative;
      // Recorded before it is made: replay of the recording makes the same encode (the frames after it
      // depend on it).
      if (recorder && requested) recorder->recovery_encode(m.frame_id, keyframe, recover_from, speculative);
      const StageEncoded sent =
          stage->encode(work.rendered, FrameSettings{.bitrate_bps = applied.bitrate_bps, .fps = applied.fps},
                        keyframe, recover_from, speculative);
      if (sent.repairs_from) metrics.count_loss_repair();
      if (sent.keyframe)
        metrics.count_keyframe(first                                 ? KeyframeCause::kStart
                               : requested && !recovery->speculative ? KeyframeCause::kLoss
                               : sent.resized                        ? KeyframeCause::kResize
                                                                     : KeyframeCause::kEncoder);
      first = false;
      handoff.give_back(work.rendered.frame);  // the slot can be rendered into again
      transport->send_frame(FrameInfo{.frame_id = m.frame_id,
                                      .pose_id = m.pose_id,
                                      .pose_time_ns = m.pose_sample_ns,
                                      .capture_time_ns = m.render_start_ns,
                                      .stream = 0,
                                      .keyframe = sent.keyframe,
                                      .repairs_from = sent.repairs_from},
                            sent.metadata, sent.access_unit);
      encode_ms = 0.8 * encode_ms + 0.2 * ms_between(sent.encode_start_ns, sent.encode_end_ns);
      metrics.observe_stage(Stage::kEncode, double(sent.encode_end_ns - sent.encode_start_ns) * 1e-9);
      metrics.observe_stage(Stage::kNodeTotal, double(sent.encode_end_ns - m.pose_received_ns) * 1e-9);
      metrics.count_frame(FrameOutcome::kSent, transport_kind);
      metrics.add_video_bytes(sent.access_unit.size());
      std::lock_guard lock(mutex);
      ++stats.frames_sent;
      stats.encode_ms = encode_ms;
      stats.bitrate_bps = applied.bitrate_bps;
      stats.fps = applied.fps;
      stats.resolution_scale = applied.resolution_scale;
      stats.foveation = m.foveation.strength;
    }
  }
};

SessionPipeline::SessionPipeline(const SessionSpec& spec, std::shared_ptr<GpuScene> scene,
                                 const TransportFactory& make_transport, NodeMetrics& metrics,
                                 const PipelineOptions& options, std::shared_ptr<Room> room)
    : impl_(std::make_unique<Impl>(spec, metrics, options)) {
  Impl& d = *impl_;
  if (const auto problem = session_shape_problem(
          SessionShape{.scene = spec.scene,
                       .eye_width = spec.eye_width,
                       .eye_height = spec.eye_height,
                       .fps = spec.fps,
                       .codec = codec_name(spec.codec),
                       .room = spec.room.empty() ? std::nullopt : std::optional<std::string>(spec.room)}))
    throw_invalid_input(problem->message);
  const int64_t initial = spec.max_bitrate_bps ? std::min(*spec.max_bitrate_bps, options.initial_bitrate_bps)
                                               : options.initial_bitrate_bps;
  d.stage = std::make_unique<FrameStage>(
      std::move(scene),
      FrameStageConfig{
          .eye_width = spec.eye_width,
          .eye_height = spec.eye_height,
          .fps = spec.fps,
          .codec = spec.codec,
          .encoder_backend = options.encoder_backend,
          .bitrate_bps = initial,
          .frames_in_flight = 3,
          .encoder_threads = options.encoder_threads,
          .keep_rgba = false,
          .zero_copy = true,
          .h264_profile = spec.h264_profile,
          .reference_invalidation = options.repair_frames && spec.transport != "webrtc",
          .intra_refresh_frames = spec.transport != "webrtc" ? options.intra_refresh_frames : 0});
  d.backend = d.stage->encoder_backend();
  d.transport_kind = spec.transport == "webrtc" ? TransportKind::kWebRtc : TransportKind::kUdp;
  if (!options.record_dir.empty()) d.recorder = std::make_unique<SessionRecorder>(options.record_dir, spec);
  d.stats.encoder_backend = d.backend;
  if (room) {
    d.seat = room->join(spec.user.empty() ? spec.id.substr(0, 8) : spec.user, steady_now_ns());
    d.room = room;
  }
  d.inbox = std::make_unique<SessionInbox>(room, d.seat);
  try {
    d.transport = make_transport(TransportSetup{.session_id = udp_session_id(spec.id),
                                                .key = spec.key,
                                                .fps = spec.fps,
                                                .initial_bitrate_bps = initial,
                                                .mailbox = d.inbox.get(),
                                                .max_picture_bytes = 3 * spec.eye_width * spec.eye_height});
  } catch (...) {
    d.leave_room();
    throw;
  }
  metrics.session_started(d.backend);
  // Every line either thread logs names the session (and the request that created it): --log-format json.
  const LogContext context{
      .request_id = spec.request_id, .session_id = spec.id, .node_id = log_context().node_id};
  d.render_thread = std::thread([&d, context] {
    ScopedLogContext scope(context);
    d.render_loop();
  });
  d.encode_thread = std::thread([&d, context] {
    ScopedLogContext scope(context);
    d.encode_loop();
  });
}

SessionPipeline::~SessionPipeline() {
  Impl& d = *impl_;
  d.stopping = true;
  d.handoff.close();
  if (d.render_thread.joinable()) d.render_thread.join();
  if (d.encode_thread.joinable()) d.encode_thread.join();
  d.account_transport(d.transport->counters());
  d.transport.reset();  // no message reaches the inbox after this
  d.leave_room();
  d.metrics.forget_session(d.metrics_label);
  d.metrics.session_ended(d.backend, d.has_failed);
  // Frames still collected but not released belong to the renderer, which frees all of its slots itself.
}

const SessionSpec& SessionPipeline::spec() const {
  return impl_->spec;
}

void SessionPipeline::set_caps(std::optional<int64_t> max_bitrate_bps, std::optional<int> max_fps,
                               std::optional<bool> foveation) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->max_bitrate_bps == max_bitrate_bps && impl_->max_fps == max_fps && impl_->foveation == foveation)
    return;
  impl_->max_bitrate_bps = max_bitrate_bps;
  impl_->max_fps = max_fps;
  impl_->foveation = foveation;
  impl_->caps_changed = true;
}

bool SessionPipeline::finished() const {
  return impl_->done;
}
bool SessionPipeline::failed() const {
  return impl_->has_failed;
}
std::string SessionPipeline::reason() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->finish_reason;
}

SessionPipelineStats SessionPipeline::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

}  // namespace kairo

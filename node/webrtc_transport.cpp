#include "node/webrtc_transport.hpp"

#include <fmt/format.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/rtp/gstrtcpbuffer.h>
#include <gst/sdp/sdp.h>
#define GST_USE_UNSTABLE_API  // webrtcbin's library API is marked unstable in 1.22 (and has not changed
                              // since)
#include <gst/webrtc/webrtc.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/foveation.hpp"
#include "streaming/frame_metadata.hpp"

namespace kairo {

IceServer parse_ice_server(const std::string& text) {
  IceServer s;
  if (text.rfind("stun:", 0) == 0) {
    s.url = text;
  } else if (text.rfind("turn:", 0) == 0 || text.rfind("turns:", 0) == 0) {
    const size_t scheme_end = text.find(':') + 1;
    const size_t at = text.rfind('@');
    const size_t colon = text.find(':', scheme_end);
    if (at == std::string::npos || colon == std::string::npos || colon > at)
      throw_invalid_input("ICE server \"" + text + "\": a TURN server needs turn:USER:PASSWORD@HOST:PORT");
    s.username = text.substr(scheme_end, colon - scheme_end);
    s.credential = text.substr(colon + 1, at - colon - 1);
    s.url = text.substr(0, scheme_end) + text.substr(at + 1);
  } else {
    throw_invalid_input("ICE server \"" + text +
                        "\": expected stun:HOST:PORT or turn:USER:PASSWORD@HOST:PORT");
  }
  if (s.url.find_first_of(" \"\\") != std::string::npos || s.url.size() > 256)
    throw_invalid_input("ICE server \"" + s.url + "\": not a URL");
  return s;
}

namespace {

// GStreamer's own references, released by RAII.
struct GstUnref {
  void operator()(void* p) const { gst_object_unref(p); }
};
template <typename T>
using GstPtr = std::unique_ptr<T, GstUnref>;

void init_gstreamer_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    GError* error = nullptr;
    if (!gst_init_check(nullptr, nullptr, &error)) {
      const std::string why = error ? error->message : "unknown";
      g_clear_error(&error);
      throw_runtime("GStreamer did not initialise: " + why);
    }
  });
}

// Which elements the pipeline needs, each with the Debian package that has it: a missing one is named.
void require_elements() {
  static const std::pair<const char*, const char*> kElements[] = {
      {"appsrc", "gstreamer1.0-plugins-base"},
      {"h264parse", "gstreamer1.0-plugins-bad"},
      {"rtph264pay", "gstreamer1.0-plugins-good"},
      {"webrtcbin", "gstreamer1.0-plugins-bad"},
      {"nicesrc", "gstreamer1.0-nice"},
      {"dtlssrtpenc", "gstreamer1.0-plugins-bad"}};
  for (const auto& [element, package] : kElements) {
    GstPtr<GstElementFactory> factory(gst_element_factory_find(element));
    if (!factory)
      throw_runtime(std::string("WebRTC needs GStreamer's ") + element + " element (Debian package " +
                    package + ")");
  }
}

enum class Phase { kWaitingForBrowser, kWaitingForCaps, kNegotiating, kConnected, kFailed };

// REMB (draft-alvestrand-rmcat-remb): "REMB", SSRC count, then a 6-bit exponent and an 18-bit mantissa.
std::optional<int64_t> remb_bitrate(GstBuffer* fci) {
  GstMapInfo map;
  if (!fci || !gst_buffer_map(fci, &map, GST_MAP_READ)) return std::nullopt;
  std::optional<int64_t> bps;
  const uint8_t* d = map.data;
  if (map.size >= 8 && d[0] == 'R' && d[1] == 'E' && d[2] == 'M' && d[3] == 'B') {
    const int exponent = d[5] >> 2;
    const uint32_t mantissa = (uint32_t(d[5] & 3) << 16) | (uint32_t(d[6]) << 8) | d[7];
    bps = int64_t(mantissa) << exponent;
  }
  gst_buffer_unmap(fci, &map);
  return bps;
}

class GstWebRtcTransport final : public WebRtcTransport {
 public:
  GstWebRtcTransport(const TransportSetup& setup, const WebRtcSettings& settings)
      : setup_(setup), settings_(settings), target_bps_(setup.initial_bitrate_bps) {
    init_gstreamer_once();
    require_elements();
    randombytes_buf(&rtp_timestamp_offset_, sizeof(rtp_timestamp_offset_));
    build_pipeline();
  }

  ~GstWebRtcTransport() override {
    // NULL state stops every streaming thread and webrtcbin's task: no callback runs after this.
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    if (channel_) g_object_unref(channel_);
    if (pool_) {
      gst_buffer_pool_set_active(pool_, FALSE);
      gst_object_unref(pool_);
    }
    gst_object_unref(pipeline_);
  }

  // --- SessionTransport ---
  void send_frame(const FrameInfo& info, std::span<const uint8_t> metadata,
                  std::span<const uint8_t> access_unit) override {
    const Phase phase = phase_.load();
    if (phase == Phase::kWaitingForBrowser || phase == Phase::kNegotiating || phase == Phase::kFailed) {
      ++frames_dropped_;
      return;
    }
    if (!info.keyframe && (phase == Phase::kWaitingForCaps || !keyframe_since_connect_)) {
      keyframe_wanted_ = true;  // the browser's decoder starts at a keyframe; webrtcbin would hold the rest
      ++frames_dropped_;
      return;
    }
    const auto m = read_frame_metadata(metadata);
    if (!m || !push_access_unit(*m, access_unit, info.keyframe)) {
      ++frames_dropped_;
      return;
    }
    if (phase != Phase::kConnected) ++frames_dropped_;  // the keyframe that sets the offer's caps: held back
    if (phase == Phase::kConnected) {
      keyframe_since_connect_ = true;
      send_frame_metadata(*m);
    }
  }

  void send_room_state(std::span<const uint8_t> message) override {
    if (phase_.load() != Phase::kConnected || message.size() > 4096) return;
    uint8_t bytes[4097];
    bytes[0] = uint8_t(wire::PacketType::kRoomState);
    std::memcpy(bytes + 1, message.data(), message.size());
    GBytes* data = g_bytes_new(bytes, message.size() + 1);
    g_signal_emit_by_name(channel_, "send-data", data);
    g_bytes_unref(data);
  }

  std::optional<RecoveryRequest> take_recovery_request() override {
    if (!keyframe_wanted_.exchange(false)) return std::nullopt;
    return RecoveryRequest{};  // a keyframe: the browser's jitter buffer waits for one after a loss
  }

  TransportFeedback feedback() const override {
    return {.target_bitrate_bps = target_bps_.load(),
            .loss = loss_.load(),
            .rtt_ms = rtt_ms_.load(),
            .client_decode_ms = decode_ms_.load(),
            .last_client_ns = last_client_ns_.load(),
            .display_phase_error_ns = 0};  // the browser presents on its own compositor's clock
  }

  TransportCounters counters() const override {
    TransportCounters c;
    c.rejected[size_t(OpenResult::kMalformed)] = messages_refused_.load();  // data channel messages refused
    c.frames_dropped = frames_dropped_.load();
    c.keyframe_requests = keyframe_requests_.load();
    return c;
  }

  // --- signalling ---
  bool attach(std::shared_ptr<SignallingChannel> channel, const wire::PoseMessage& first_pose) override {
    {
      std::lock_guard lock(mutex_);
      if (signalling_) return false;
      signalling_ = std::move(channel);
    }
    touch();
    setup_.mailbox->deliver(first_pose, steady_now_ns());
    Phase expected = Phase::kWaitingForBrowser;
    phase_.compare_exchange_strong(expected, Phase::kWaitingForCaps);
    keyframe_wanted_ = true;
    maybe_create_offer();  // caps may be there already (never in practice: nothing is pushed before)
    return true;
  }

  void detach(const SignallingChannel* channel) override {
    std::lock_guard lock(mutex_);
    if (signalling_.get() == channel) signalling_.reset();
  }

  std::optional<std::string> remote_answer(std::string_view sdp) override {
    if (phase_.load() != Phase::kNegotiating || answered_) return "no offer is waiting for an answer";
    GstSDPMessage* message = nullptr;
    gst_sdp_message_new(&message);
    const std::string text(sdp);
    if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(text.data()), guint(text.size()),
                                     message) != GST_SDP_OK ||
        gst_sdp_message_medias_len(message) == 0 || gst_sdp_message_get_version(message) == nullptr) {
      gst_sdp_message_free(message);
      return "the answer is not an SDP session description";
    }
    GstWebRTCSessionDescription* answer =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, message);
    GstPromise* promise = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-remote-description", answer, promise);
    gst_webrtc_session_description_free(answer);
    gst_promise_wait(promise);
    std::optional<std::string> error;
    if (const GstStructure* reply = gst_promise_get_reply(promise)) {
      GError* e = nullptr;
      if (gst_structure_get(reply, "error", G_TYPE_ERROR, &e, nullptr) && e) {
        error = std::string("the answer was refused: ") + e->message;
        g_clear_error(&e);
      }
    }
    gst_promise_unref(promise);
    if (!error) answered_ = true;
    touch();
    return error;
  }

  std::optional<std::string> remote_candidate(unsigned mline_index, std::string_view candidate) override {
    if (!answered_) return "a candidate before the answer";
    if (mline_index > 8) return "no such media line";
    if (candidate.empty()) return std::nullopt;  // the end of the browser's candidates
    if (candidate.size() > 1024 || candidate.find_first_of("\r\n") != std::string_view::npos)
      return "not an ICE candidate";
    const std::string text(candidate);
    g_signal_emit_by_name(webrtc_, "add-ice-candidate", mline_index, text.c_str());
    touch();
    return std::nullopt;
  }

  bool connected() const override { return phase_.load() == Phase::kConnected; }

 private:
  void build_pipeline() {
    GError* error = nullptr;
    pipeline_ = gst_parse_launch(
        "appsrc name=src is-live=true format=time do-timestamp=false "
        "caps=video/x-h264,stream-format=byte-stream,alignment=au ! h264parse ! "
        "rtph264pay name=pay config-interval=-1 aggregate-mode=zero-latency pt=96 mtu=1200 ! "
        "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! "
        "webrtcbin name=webrtc bundle-policy=max-bundle",
        &error);
    if (!pipeline_) {
      const std::string why = error ? error->message : "unknown";
      g_clear_error(&error);
      throw_runtime("WebRTC pipeline: " + why);
    }
    g_clear_error(&error);  // a non-fatal warning
    gst_object_ref_sink(pipeline_);
    GstPtr<GstElement> pay(gst_bin_get_by_name(GST_BIN(pipeline_), "pay"));
    g_object_set(pay.get(), "timestamp-offset", guint(rtp_timestamp_offset_), nullptr);
    appsrc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "src");
    gst_object_unref(appsrc_);  // the bin keeps it alive as long as the pipeline
    webrtc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "webrtc");
    gst_object_unref(webrtc_);
    g_object_set(appsrc_, "max-buffers", guint64(4), "block", FALSE, nullptr);

    for (const IceServer& s : settings_.ice_servers) {
      if (s.url.rfind("stun:", 0) == 0) {
        g_object_set(webrtc_, "stun-server", ("stun://" + s.url.substr(5)).c_str(), nullptr);
      } else {
        const std::string scheme = s.url.substr(0, s.url.find(':'));
        const std::string uri =
            scheme + "://" + s.username + ":" + s.credential + "@" + s.url.substr(scheme.size() + 1);
        gboolean added = FALSE;
        g_signal_emit_by_name(webrtc_, "add-turn-server", uri.c_str(), &added);
      }
    }

    g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(&GstWebRtcTransport::on_ice_candidate), this);
    g_signal_connect(webrtc_, "notify::connection-state",
                     G_CALLBACK(&GstWebRtcTransport::on_connection_state), this);
    GstPtr<GstPad> sink(gst_element_get_static_pad(webrtc_, "sink_0"));
    if (!sink) throw_runtime("WebRTC pipeline: webrtcbin has no video input");
    g_signal_connect(sink.get(), "notify::caps", G_CALLBACK(&GstWebRtcTransport::on_caps), this);
    GstPtr<GstPad> src_pad(gst_element_get_static_pad(appsrc_, "src"));
    gst_pad_add_probe(src_pad.get(), GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
                      &GstWebRtcTransport::on_upstream_event, this, nullptr);

    // Video only, sent: NACK answered from webrtcbin's RTX store; RED/ULPFEC at a modest fixed share
    // (webrtcbin 1.22 cannot change it on a live transceiver; NACK does most of the recovery at browser
    // RTTs).
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_signal_emit_by_name(webrtc_, "get-transceiver", 0, &transceiver);
    if (!transceiver) throw_runtime("WebRTC pipeline: no video transceiver");
    g_object_set(transceiver, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "do-nack", TRUE,
                 "fec-type", GST_WEBRTC_FEC_TYPE_ULP_RED, "fec-percentage", guint(10), nullptr);
    gst_object_unref(transceiver);

    if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
      throw_runtime("WebRTC pipeline would not start");

    // The data channel, made by the node before the offer so that it is in it: unordered and never
    // retransmitted, because a late pose or late frame metadata is worth nothing.
    GstStructure* options = gst_structure_new("application/data-channel", "ordered", G_TYPE_BOOLEAN, FALSE,
                                              "max-retransmits", G_TYPE_INT, 0, nullptr);
    g_signal_emit_by_name(webrtc_, "create-data-channel", "kairo", options, &channel_);
    gst_structure_free(options);
    if (!channel_) throw_runtime("WebRTC pipeline: the data channel could not be made");
    g_signal_connect(channel_, "on-message-data", G_CALLBACK(&GstWebRtcTransport::on_message_data), this);
    g_signal_connect(channel_, "on-message-string", G_CALLBACK(&GstWebRtcTransport::on_message_string), this);

    // Access units are copied once into buffers of a fixed pool: no allocation per frame.
    const guint largest = guint(std::max(512 * 1024, 2 * setup_.max_picture_bytes));
    pool_ = gst_buffer_pool_new();
    GstStructure* config = gst_buffer_pool_get_config(pool_);
    gst_buffer_pool_config_set_params(config, nullptr, largest, 2, 8);
    if (!gst_buffer_pool_set_config(pool_, config) || !gst_buffer_pool_set_active(pool_, TRUE))
      throw_runtime("WebRTC pipeline: buffer pool");
  }

  void touch() { last_client_ns_ = steady_now_ns(); }

  std::shared_ptr<SignallingChannel> signalling() {
    std::lock_guard lock(mutex_);
    return signalling_;
  }

  bool push_access_unit(const FrameMetadata& m, std::span<const uint8_t> au, bool keyframe) {
    GstBuffer* buffer = nullptr;
    GstBufferPoolAcquireParams params{};
    params.flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT;
    if (gst_buffer_pool_acquire_buffer(pool_, &buffer, &params) != GST_FLOW_OK || !buffer) {
      keyframe_wanted_ = true;  // every buffer is still downstream: drop this frame, restart at a keyframe
      return false;
    }
    GstMapInfo map;
    if (au.size() > gst_buffer_get_size(buffer) || !gst_buffer_map(buffer, &map, GST_MAP_WRITE)) {
      gst_buffer_unref(buffer);
      keyframe_wanted_ = true;
      return false;
    }
    std::memcpy(map.data, au.data(), au.size());
    gst_buffer_unmap(buffer, &map);
    gst_buffer_set_size(buffer, gssize(au.size()));
    // The frame's own schedule (its render start) is its timestamp: RTP timestamps then step with the
    // frames, and the browser's requestVideoFrameCallback reports exactly the value sent in the metadata.
    if (first_render_ns_ == 0) first_render_ns_ = m.render_start_ns;
    const GstClockTime pts = GstClockTime(std::max<int64_t>(0, m.render_start_ns - first_render_ns_));
    GST_BUFFER_PTS(buffer) = pts;
    GST_BUFFER_DTS(buffer) = pts;
    if (!keyframe) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    last_rtp_timestamp_ = uint32_t(rtp_timestamp_offset_ + gst_util_uint64_scale_int(pts, 90000, GST_SECOND));
    if (gst_app_src_push_buffer(GST_APP_SRC(appsrc_), buffer) != GST_FLOW_OK) return false;
    ++frames_sent_;
    return true;
  }

  // One JSON text per frame on the data channel, keyed by the frame's RTP timestamp: what the browser needs
  // to draw it (poses, FOVs, the foveation warp per eye and axis) and to break its latency into stages.
  void send_frame_metadata(const FrameMetadata& m) {
    metadata_text_.clear();
    auto out = std::back_inserter(metadata_text_);
    fmt::format_to(
        out,
        R"({{"t":"frame","rtp":{},"id":{},"pose_id":{},"key":{},"room":{},"ts":[{},{},{},{},{},{},{},{}],)",
        last_rtp_timestamp_, m.frame_id, m.pose_id, m.keyframe, m.room_version, m.pose_sample_ns,
        m.display_time_ns, m.pose_received_ns, m.render_start_ns, m.render_end_ns, m.encode_start_ns,
        m.encode_end_ns, steady_now_ns());
    fmt::format_to(out, R"("size":[{},{},{},{}],"eyes":[)", m.eye_width, m.eye_height, m.coded_width,
                   m.coded_height);
    for (int eye = 0; eye < 2; ++eye) {
      const EyeView& v = m.view[size_t(eye)];
      const FoveationParams& f = m.foveation;
      const AxisWarp wx =
          axis_warp(f.centre[size_t(eye)].x, f.fovea_radius, f.strength, m.eye_width, m.coded_width);
      const AxisWarp wy =
          axis_warp(f.centre[size_t(eye)].y, f.fovea_radius, f.strength, m.eye_height, m.coded_height);
      fmt::format_to(
          out,
          R"({}{{"p":[{},{},{}],"q":[{},{},{},{}],"fov":[{},{},{},{}],"wx":[{},{},{},{}],"wy":[{},{},{},{}]}})",
          eye ? "," : "", v.pose.position.x, v.pose.position.y, v.pose.position.z, v.pose.orientation.x,
          v.pose.orientation.y, v.pose.orientation.z, v.pose.orientation.w, v.fov.left, v.fov.right, v.fov.up,
          v.fov.down, wx.a, wx.b, wx.coded_a, wx.coded_b, wy.a, wy.b, wy.coded_a, wy.coded_b);
    }
    metadata_text_ += "]}";
    g_signal_emit_by_name(channel_, "send-string", metadata_text_.c_str());
  }

  void maybe_create_offer() {
    if (phase_.load() != Phase::kWaitingForCaps || !have_caps_ || !signalling()) return;
    Phase expected = Phase::kWaitingForCaps;
    if (!phase_.compare_exchange_strong(expected, Phase::kNegotiating)) return;
    GstPromise* promise =
        gst_promise_new_with_change_func(&GstWebRtcTransport::on_offer_created, this, nullptr);
    g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
  }

  static void on_offer_created(GstPromise* promise, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    GstWebRTCSessionDescription* offer = nullptr;
    if (const GstStructure* reply = gst_promise_get_reply(promise))
      gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
    gst_promise_unref(promise);
    if (!offer) {
      self->fail("webrtcbin made no offer");
      return;
    }
    g_signal_emit_by_name(self->webrtc_, "set-local-description", offer, nullptr);
    gchar* sdp = gst_sdp_message_as_text(offer->sdp);
    nlohmann::json message{{"type", "offer"}, {"sdp", sdp}, {"iceServers", nlohmann::json::array()}};
    for (const IceServer& s : self->settings_.ice_servers) {
      nlohmann::json server{{"urls", s.url}};
      if (!s.username.empty()) server["username"] = s.username;
      if (!s.credential.empty()) server["credential"] = s.credential;
      message["iceServers"].push_back(server);
    }
    g_free(sdp);
    gst_webrtc_session_description_free(offer);
    if (auto channel = self->signalling()) channel->send(message.dump());
  }

  void fail(const std::string& why) {
    spdlog::warn("webrtc session {:08x}: {}", setup_.session_id, why);
    phase_ = Phase::kFailed;
    if (auto channel = signalling())
      channel->send(nlohmann::json{{"type", "error"}, {"code", "webrtc_failed"}, {"message", why}}.dump());
  }

  static void on_caps(GstPad*, GParamSpec*, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    self->have_caps_ = true;
    self->maybe_create_offer();
  }

  static void on_ice_candidate(GstElement*, guint mline, gchar* candidate, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    if (auto channel = self->signalling())
      channel->send(
          nlohmann::json{{"type", "ice"}, {"sdpMLineIndex", mline}, {"candidate", candidate}}.dump());
  }

  static void on_connection_state(GstElement* webrtc, GParamSpec*, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    GstWebRTCPeerConnectionState state;
    g_object_get(webrtc, "connection-state", &state, nullptr);
    if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
      self->watch_feedback();
      self->keyframe_since_connect_ = false;
      self->keyframe_wanted_ = true;
      self->phase_ = Phase::kConnected;
      self->touch();
      spdlog::info("webrtc session {:08x}: connected", self->setup_.session_id);
    } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
      self->fail("the WebRTC connection failed (ICE or DTLS)");
    }
  }

  // The browser's bandwidth estimate (REMB, Chromium's GCC) is the encoder's target, less the share RTP
  // headers, RTX and FEC take.
  void watch_feedback() {
    if (feedback_watched_.exchange(true)) return;
    GstPtr<GstElement> rtpbin(gst_bin_get_by_name(GST_BIN(webrtc_), "rtpbin"));
    if (!rtpbin) return;
    GObject* session = nullptr;
    g_signal_emit_by_name(rtpbin.get(), "get-internal-session", 0u, &session);
    if (!session) return;
    g_signal_connect(session, "on-feedback-rtcp", G_CALLBACK(&GstWebRtcTransport::on_feedback), this);
    g_object_unref(session);
  }

  static void on_feedback(GObject*, guint type, guint fbtype, guint, guint, GstBuffer* fci, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    if (type != GST_RTCP_TYPE_PSFB || fbtype != GST_RTCP_PSFB_TYPE_AFB) return;
    if (const auto bps = remb_bitrate(fci)) {
      self->target_bps_ = std::max<int64_t>(100'000, int64_t(double(*bps) * 0.85));
      self->remb_seen_ = true;
    }
  }

  static GstPadProbeReturn on_upstream_event(GstPad*, GstPadProbeInfo* info, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    if (event && GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_UPSTREAM) {
      const GstStructure* s = gst_event_get_structure(event);
      if (s && gst_structure_has_name(s, "GstForceKeyUnit")) {  // the browser's PLI or FIR
        ++self->keyframe_requests_;
        self->keyframe_wanted_ = true;
        return GST_PAD_PROBE_DROP;  // answered here: the encoder is upstream of GStreamer
      }
    }
    return GST_PAD_PROBE_OK;
  }

  // Binary: [packet type][payload] of a pose, hand or input message, as the UDP path's payloads.
  static void on_message_data(GstWebRTCDataChannel*, GBytes* data, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    gsize size = 0;
    const auto* bytes = static_cast<const uint8_t*>(g_bytes_get_data(data, &size));
    if (!bytes || size < 1) {
      ++self->messages_refused_;
      return;
    }
    const auto message =
        read_uplink(wire::PacketType(bytes[0]), std::span<const uint8_t>(bytes + 1, size - 1));
    if (!message) {
      ++self->messages_refused_;
      return;
    }
    const int64_t now = steady_now_ns();
    self->last_client_ns_ = now;
    self->setup_.mailbox->deliver(*message, now);
  }

  // Text: the browser's report (every 250 ms: loss, decode time, RTT measured with pings) or a ping for the
  // clock offset.
  static void on_message_string(GstWebRTCDataChannel* channel, gchar* text, gpointer user) {
    auto* self = static_cast<GstWebRtcTransport*>(user);
    const std::string_view view = text ? std::string_view(text) : std::string_view();
    const auto message = view.size() <= 4096 ? nlohmann::json::parse(view, nullptr, false) : nlohmann::json();
    if (!message.is_object() || !message.contains("t") || !message["t"].is_string()) {
      ++self->messages_refused_;
      return;
    }
    const int64_t now = steady_now_ns();
    self->last_client_ns_ = now;
    const std::string& type = message["t"].get_ref<const std::string&>();
    if (type == "ping" && message.contains("c") && message["c"].is_number()) {
      const std::string pong =
          fmt::format(R"({{"t":"pong","c":{},"n":{}}})", message["c"].get<double>(), steady_now_ns());
      g_signal_emit_by_name(channel, "send-string", pong.c_str());
    } else if (type == "report") {
      const auto number = [&](const char* key, double lo, double hi) -> std::optional<double> {
        if (!message.contains(key) || !message[key].is_number()) return std::nullopt;
        const double v = message[key].get<double>();
        return std::isfinite(v) ? std::optional(std::clamp(v, lo, hi)) : std::nullopt;
      };
      if (const auto v = number("loss", 0, 1)) self->loss_ = 0.7 * self->loss_.load() + 0.3 * *v;
      if (const auto v = number("rtt_ms", 0, 10'000)) self->rtt_ms_ = *v;
      if (const auto v = number("decode_ms", 0, 10'000)) self->decode_ms_ = *v;
    } else {
      ++self->messages_refused_;
    }
  }

  TransportSetup setup_;
  WebRtcSettings settings_;
  GstElement* pipeline_ = nullptr;
  GstElement* appsrc_ = nullptr;
  GstElement* webrtc_ = nullptr;
  GstWebRTCDataChannel* channel_ = nullptr;
  GstBufferPool* pool_ = nullptr;
  uint32_t rtp_timestamp_offset_ = 0;
  // Encode thread only.
  int64_t first_render_ns_ = 0;
  uint32_t last_rtp_timestamp_ = 0;
  std::string metadata_text_;

  std::mutex mutex_;
  std::shared_ptr<SignallingChannel> signalling_;  // guarded by mutex_
  std::atomic<Phase> phase_{Phase::kWaitingForBrowser};
  std::atomic<bool> have_caps_{false}, answered_{false}, feedback_watched_{false}, remb_seen_{false},
      keyframe_wanted_{false}, keyframe_since_connect_{false};
  std::atomic<int64_t> target_bps_, last_client_ns_{0};
  std::atomic<double> loss_{0}, rtt_ms_{0}, decode_ms_{0};
  std::atomic<uint64_t> frames_sent_{0}, frames_dropped_{0}, messages_refused_{0}, keyframe_requests_{0};
};

}  // namespace

std::shared_ptr<WebRtcTransport> WebRtcTransport::create(const TransportSetup& setup,
                                                         const WebRtcSettings& settings) {
  if (!setup.mailbox) throw_invalid_input("a WebRTC transport needs the session's mailbox");
  return std::make_shared<GstWebRtcTransport>(setup, settings);
}

}  // namespace kairo

#include "node/node_agent.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "control-plane/api_json.hpp"
#include "control-plane/http_client.hpp"
#include "control-plane/http_server.hpp"
#include "core/clock.hpp"
#include "core/content_hash.hpp"
#include "core/error.hpp"
#include "core/log_format.hpp"
#include "core/names.hpp"
#include "encoder/video_encoder.hpp"
#include "node/admin_socket.hpp"
#include "node/node_metrics.hpp"
#include "node/room.hpp"
#include "node/scene_cache.hpp"
#include "node/scene_residency.hpp"
#include "node/session_pipeline.hpp"
#include "node/signalling_server.hpp"
#include "node/webrtc_transport.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "renderer/vulkan_context.hpp"
#include "streaming/udp_mux.hpp"
#include "streaming/udp_session_transport.hpp"

namespace kairo {

namespace {

bool is_scene_file(const std::filesystem::path& p) {
  static const char* kExtensions[] = {".glb", ".gltf", ".obj", ".fbx", ".dae",
                                      ".ply", ".off",  ".stl", ".3ds"};
  std::string ext = p.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (const char* e : kExtensions)
    if (ext == e) return true;
  return false;
}

}  // namespace

struct NodeAgent::Impl {
  NodeOptions options;
  control::ControlUrl url;
  std::shared_ptr<VulkanContext> vulkan;
  std::unique_ptr<UdpMux> mux;
  // Sessions stream over UDP on the node's one socket (a browser transport would be a second factory).
  TransportFactory udp_transport = [this](const TransportSetup& setup) {
    return make_udp_session_transport(*mux, setup);
  };
  // Browser sessions: a WebRTC transport per session, found by the signalling socket while it lives.
  std::unique_ptr<SignallingServer> signalling;
  WebRtcSettings webrtc_settings;
  std::string signalling_url;
  TransportFactory webrtc_transport_for(const std::string& session_id) {
    return [this, session_id](const TransportSetup& setup) -> std::unique_ptr<SessionTransport> {
      if (!signalling) throw_invalid_input("this node takes no browser sessions");
      return std::make_unique<RegisteredTransport>(*signalling, session_id, setup.key,
                                                   WebRtcTransport::create(setup, webrtc_settings));
    };
  }
  // The session's WebRTC transport, findable by the signalling socket from creation to destruction.
  class RegisteredTransport final : public SessionTransport {
   public:
    RegisteredTransport(SignallingServer& server, std::string id, const SessionKey& key,
                        std::shared_ptr<WebRtcTransport> transport)
        : server_(server), id_(std::move(id)), transport_(std::move(transport)) {
      server_.add(id_, key, transport_);
    }
    ~RegisteredTransport() override { server_.remove(id_); }
    void send_frame(const FrameInfo& info, std::span<const uint8_t> metadata,
                    std::span<const uint8_t> access_unit) override {
      transport_->send_frame(info, metadata, access_unit);
    }
    void send_room_state(std::span<const uint8_t> message) override { transport_->send_room_state(message); }
    std::optional<RecoveryRequest> take_recovery_request() override {
      return transport_->take_recovery_request();
    }
    TransportFeedback feedback() const override { return transport_->feedback(); }
    TransportCounters counters() const override { return transport_->counters(); }

   private:
    SignallingServer& server_;
    std::string id_;
    std::shared_ptr<WebRtcTransport> transport_;
  };
  NodeMetrics metrics;
  std::unique_ptr<control::HttpServer> metrics_server;
  std::unique_ptr<AdminSocket> admin;
  std::map<std::string, std::filesystem::path> scene_files;  // by file name and by stem
  std::unique_ptr<SceneResidency> residency;  // the scenes on the device, within --scene-memory-mb
  // Catalogue scenes (docs/scenes.md "Delivery"): a session on one that this node does not hold waits (not
  // started, slot kept) while the fetcher thread fetches it once, however many sessions wait for it.
  std::unique_ptr<SceneCache> scene_cache;
  std::mutex fetch_mutex;
  std::condition_variable fetch_wake;
  std::deque<std::string> fetch_queue;                                    // hashes
  std::map<std::string, std::vector<v1::NodeSession>> waiting_for_scene;  // by hash
  std::vector<std::string> encoders;
  mutable std::mutex sessions_mutex;
  std::map<std::string, std::unique_ptr<SessionPipeline>> sessions;
  // A room outlives its last member for a minute: reconnecting users find it as it was.
  RoomRegistry rooms{60.0, RoomOptions{},
                     [this](wire::RoomEventKind kind) { metrics.room_event(uint8_t(kind)); }};
  std::atomic<int64_t> node_id{-1};           // set by registration (again on the feed's thread if forgotten)
  std::atomic<uint64_t> sessions_started{0};  // pipelines started (each session once: tests check)
  std::atomic<bool> drain_requested{false}, drain_reported{false};

  void report_drain() {
    if (!drain_requested || drain_reported) return;
    const auto r = call("POST", "/v1/nodes/" + std::to_string(node_id) + "/drain", nullptr);
    if (r.status != 200) throw_runtime("drain: HTTP " + std::to_string(r.status));
    drain_reported = true;
    spdlog::info("node {} drained: no new sessions; running ones continue", escape_for_log(options.name));
  }

  std::string local_status() const {
    int active;
    {
      std::lock_guard lock(sessions_mutex);
      active = int(sessions.size());
    }
    return std::string(R"({"status":"ok","active_sessions":)") + std::to_string(active) + R"(,"draining":)" +
           (drain_requested ? "true" : "false") + "}";
  }

  control::HttpResult call(const std::string& method, const std::string& target,
                           const google::protobuf::Message* body, double timeout_s = 5) {
    return control::http_request(
        url, method, target, body ? control::to_json(*body) : "", options.node_token,
        control::HttpClientOptions{.timeout_s = timeout_s, .ca_file = options.ca_file});
  }

  std::string advertised() const {
    if (!options.advertise_address.empty()) return options.advertise_address;
    const std::string& l = options.listen_udp;
    return l.substr(0, l.rfind(':')) + ":" + std::to_string(mux->port());
  }

  void register_node() {
    v1::NodeRegistration body;
    body.set_name(options.name);
    body.set_address(advertised());
    body.set_device(vulkan->gpu().name);
    for (const std::string& e : encoders) body.add_encoders(e);
    for (const auto& [name, path] : scene_files) body.add_scenes(name);
    for (const std::string& hash : scene_cache->held()) body.add_cached_scenes(hash);
    body.set_max_sessions(options.max_sessions);
    if (!signalling_url.empty()) body.set_signalling_url(signalling_url);
    const auto r = call("POST", "/v1/nodes/register", &body);
    if (r.status == 401) throw_invalid_input("the control plane refused the node token");
    if (r.status != 201)
      throw_runtime("node registration failed: HTTP " + std::to_string(r.status) + " " + r.body);
    v1::NodeRegistered registered;
    control::parse_answer(r.body, registered);
    node_id = registered.node_id();
    follow_heartbeat_interval(registered.heartbeat_interval_ms());
    spdlog::info("node {} registered as id {} at {} ({} scenes, {} sessions max)",
                 escape_for_log(options.name), node_id, escape_for_log(advertised()), scene_files.size(),
                 options.max_sessions);
  }

  // The session's scene: a catalogue scene from the cache (start_session made sure it is there), else the
  // file of that name in the node's folder.
  std::shared_ptr<GpuScene> scene(const v1::NodeSession& s) {
    if (s.has_scene_sha256()) {
      const auto file = scene_cache->find(s.scene_sha256());
      if (!file) throw_runtime("scene " + s.scene_sha256() + " left the cache before its session started");
      return residency->acquire(*file);
    }
    const auto it = scene_files.find(s.scene());
    if (it == scene_files.end()) throw_invalid_input("this node has no scene \"" + s.scene() + "\"");
    return residency->acquire(it->second);
  }

  // Queues the session until its scene is fetched; false when the scene arrived meanwhile (start it now).
  bool wait_for_scene(const v1::NodeSession& s) {
    std::lock_guard lock(fetch_mutex);
    if (scene_cache->find(s.scene_sha256())) return false;
    auto& waiting = waiting_for_scene[s.scene_sha256()];
    if (waiting.empty()) {
      fetch_queue.push_back(s.scene_sha256());
      fetch_wake.notify_one();
    }
    waiting.push_back(s);
    spdlog::info("session {} waits for its scene {} (sha256 {}): fetching it from the control plane",
                 s.session_id().substr(0, 8), escape_for_log(s.scene()), s.scene_sha256().substr(0, 16));
    return true;
  }

  bool waiting(const std::string& session_id) {
    std::lock_guard lock(fetch_mutex);
    for (const auto& [hash, queued] : waiting_for_scene)
      for (const auto& s : queued)
        if (s.session_id() == session_id) return true;
    return false;
  }

  // Tells the control plane what the cache holds (placement prefers nodes that hold a session's scene).
  void report_scene_cache() {
    v1::NodeSceneCache body;
    for (const std::string& hash : scene_cache->held()) body.add_sha256(hash);
    const auto r = call("PUT", "/v1/nodes/" + std::to_string(node_id) + "/scene-cache", &body);
    if (r.status != 204) spdlog::warn("could not report the scene cache: HTTP {}", r.status);
  }

  // The fetcher thread: one catalogue scene at a time, verified into the cache, then the sessions that waited
  // for it started (or failed with the reason).
  void fetch_scenes(const std::atomic<bool>& stop) {
    ScopedLogContext scope({.node_id = node_id});
    while (!stop) {
      std::string hash;
      {
        std::unique_lock lock(fetch_mutex);
        fetch_wake.wait_for(lock, std::chrono::milliseconds(200), [this] { return !fetch_queue.empty(); });
        if (fetch_queue.empty()) continue;
        hash = fetch_queue.front();
        fetch_queue.pop_front();
      }
      std::string failure;
      const int64_t start = steady_now_ns();
      try {
        const auto r = control::http_request(
            url, "GET", "/v1/scene-blobs/" + hash, "", options.node_token,
            control::HttpClientOptions{.timeout_s = 300,
                                       .ca_file = options.ca_file,
                                       .max_response_bytes = uint64_t(options.scene_cache_mb) << 20});
        if (r.status == 404)
          throw_runtime("the control plane has no such scene (deleted from the catalogue?)");
        if (r.status != 200) throw_runtime("the control plane answered HTTP " + std::to_string(r.status));
        {
          // Under the lock: a session arriving now either finds the scene cached or is among those started.
          std::lock_guard lock(fetch_mutex);
          scene_cache->store(hash, r.body);
        }
        metrics.scene_fetched(true);
        spdlog::info("scene {} fetched: {} bytes in {:.2f} s", hash.substr(0, 16), r.body.size(),
                     double(steady_now_ns() - start) * 1e-9);
        report_scene_cache();
      } catch (const std::exception& e) {
        failure = e.what();
        metrics.scene_fetched(false);
      }
      std::vector<v1::NodeSession> ready;
      {
        std::lock_guard lock(fetch_mutex);
        ready = waiting_for_scene[hash];
      }
      for (const v1::NodeSession& s : ready) {
        if (failure.empty()) {
          start_session(s);
        } else {
          ScopedLogContext session_scope({.session_id = s.session_id()});
          spdlog::warn("session {} failed: its scene could not be fetched: {}", s.session_id().substr(0, 8),
                       escape_for_log(failure));
          report(s.session_id(), "failed",
                 "the node could not fetch scene \"" + s.scene() + "\" (sha256 " + hash + "): " + failure);
        }
      }
      std::lock_guard lock(fetch_mutex);
      waiting_for_scene.erase(hash);
    }
  }

  void report(const std::string& session, const std::string& state, const std::string& reason) {
    try {
      v1::SessionStateReport message;
      message.set_state(state);
      message.set_reason(reason.substr(0, 500));
      call("POST", "/v1/nodes/" + std::to_string(node_id) + "/sessions/" + session, &message);
    } catch (const std::exception& e) {
      spdlog::warn("could not report session {} {}: {}", escape_for_log(session.substr(0, 8)), state,
                   escape_for_log(e.what()));
    }
  }

  void start_session(const v1::NodeSession& s) {
    const std::string& id = s.session_id();
    const std::string request_id = is_request_id(s.request_id()) ? s.request_id() : std::string();
    ScopedLogContext scope({.request_id = request_id, .session_id = id});
    SessionSpec spec{.id = id,
                     .request_id = request_id,
                     .scene = s.scene(),
                     .eye_width = s.eye_width(),
                     .eye_height = s.eye_height(),
                     .fps = s.fps(),
                     .codec = Codec::kH264,
                     .key = {},
                     .max_bitrate_bps =
                         s.has_max_bitrate_bps() ? std::optional<int64_t>(s.max_bitrate_bps()) : std::nullopt,
                     .max_fps = s.has_max_fps() ? std::optional<int>(s.max_fps()) : std::nullopt,
                     .foveation = s.has_foveation() ? std::optional<bool>(s.foveation()) : std::nullopt,
                     .room = s.has_room() ? s.room() : std::string(),
                     .user = s.has_user() ? s.user() : std::string(),
                     .transport = s.has_transport() ? s.transport() : std::string("udp")};
    try {
      if (s.has_scene_sha256()) {
        if (!is_sha256_hex(s.scene_sha256())) throw_invalid_input("malformed scene hash");
        if (!scene_cache->find(s.scene_sha256()) && wait_for_scene(s)) return;
      }
      // The control plane refuses such names already; a node checks what it is handed all the same (an older
      // or compromised control plane must not be able to forge this node's log lines or paths).
      if (const auto problem = name_problem(spec.scene, 256)) throw_invalid_input("scene name " + *problem);
      if (!spec.room.empty())
        if (const auto problem = name_problem(spec.room, 128)) throw_invalid_input("room name " + *problem);
      if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw_invalid_input("malformed session id");
      spec.codec = parse_codec(s.codec());
      spec.key = SessionKey::from_hex(s.session_key());
      if (spec.transport != "udp" && spec.transport != "webrtc")
        throw_invalid_input("unknown transport \"" + escape_for_log(spec.transport) + "\"");
      const bool browser = spec.transport == "webrtc";
      if (browser) spec.h264_profile = "main";  // what browsers decode (x264 would choose High)
      auto pipeline = std::make_unique<SessionPipeline>(
          spec, scene(s), browser ? webrtc_transport_for(id) : udp_transport, metrics,
          PipelineOptions{.encoder_backend = options.encoder_backend,
                          .encoder_threads = options.encoder_threads,
                          .repair_frames = options.repair_frames,
                          // Waves of a sixth of a second: a loss is repaired within two, with no round trip.
                          .intra_refresh_frames = options.intra_refresh ? std::max(3, spec.fps / 6) : 0,
                          .connect_timeout_s = options.connect_timeout_s,
                          .foveation = options.foveation,
                          .fixed_foveation = options.fixed_foveation,
                          .picture_ceiling_bpp = options.picture_ceiling_bpp,
                          .record_dir = options.record_dir},
          spec.room.empty() ? nullptr : rooms.room(spec.room));
      spdlog::info("session {} started: {} {}x{}x2 @ {} fps, encoder {}{}", id.substr(0, 8),
                   escape_for_log(spec.scene), spec.eye_width, spec.eye_height, spec.fps,
                   pipeline->stats().encoder_backend,
                   spec.room.empty() ? "" : ", room " + escape_for_log(spec.room));
      {
        std::lock_guard lock(sessions_mutex);
        sessions[id] = std::move(pipeline);
      }
      report(id, "running", "");
    } catch (const std::exception& e) {
      spdlog::warn("session {} could not start: {}", escape_for_log(id.substr(0, 8)),
                   escape_for_log(e.what()));
      report(id, "failed", std::string("the node could not start the session: ") + e.what());
    }
  }

  // The node's feed (docs/control-api.md "Node feed"): one request at a time, held by the control plane
  // until this node's sessions, caps or drain state change or a second passes, so a placed session starts
  // as soon as it is placed; each request is also the heartbeat. The cursor makes a reconnection (to any
  // replica) resume: the answer is the node's whole state, applied by session id, so nothing is started
  // twice or missed.
  std::string feed_cursor = "0";

  void follow_feed() {
    int active;
    {
      std::lock_guard lock(sessions_mutex);
      active = int(sessions.size());
    }
    const double load = options.max_sessions > 0 ? double(active) / options.max_sessions : 0.0;
    const int wait_ms = int(std::min(1.0, options.heartbeat_interval_s) * 1000.0);
    // Held up to wait_ms by the control plane: the request's timeout is that and the usual 5 s.
    const auto r = call("GET",
                        "/v1/nodes/" + std::to_string(node_id) + "/feed?cursor=" + feed_cursor +
                            "&wait_ms=" + std::to_string(wait_ms) + "&load=" + std::to_string(load),
                        nullptr, double(wait_ms) * 1e-3 + 5);
    if (r.status == 404) {  // forgotten (database restored?): register again, and start the feed over
      register_node();
      feed_cursor = "0";
      return;
    }
    if (r.status != 200) throw_runtime("node feed: HTTP " + std::to_string(r.status));
    v1::NodeFeed feed;
    control::parse_answer(r.body, feed);
    follow_heartbeat_interval(feed.heartbeat_interval_ms());
    if (!feed.changed()) return;
    apply_sessions(feed.sessions());
    feed_cursor = feed.cursor();
  }

  // The control plane's list of this node's live sessions: start those not running, stop those not listed,
  // pass new caps to the running ones.
  void apply_sessions(const google::protobuf::RepeatedPtrField<v1::NodeSession>& placed) {
    std::map<std::string, const v1::NodeSession*> wanted;
    for (const v1::NodeSession& s : placed) wanted[s.session_id()] = &s;
    // Sessions the control plane no longer lists (ended by the client or an operator): tear down.
    std::vector<std::unique_ptr<SessionPipeline>> stopped;
    {
      std::lock_guard lock(sessions_mutex);
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (!wanted.count(it->first)) {
          ScopedLogContext scope({.session_id = it->first});
          spdlog::info("session {} ended by the control plane", it->first.substr(0, 8));
          stopped.push_back(std::move(it->second));
          it = sessions.erase(it);
        } else {
          ++it;
        }
      }
    }
    stopped.clear();  // joins the pipelines' threads outside the lock
    {
      std::lock_guard lock(fetch_mutex);
      for (auto& [hash, waiting_sessions] : waiting_for_scene)
        std::erase_if(waiting_sessions,
                      [&](const v1::NodeSession& s) { return !wanted.count(s.session_id()); });
    }
    for (const auto& [id, s] : wanted) {
      bool running;
      {
        std::lock_guard lock(sessions_mutex);
        const auto it = sessions.find(id);
        running = it != sessions.end();
        if (running) {
          it->second->set_caps(
              s->has_max_bitrate_bps() ? std::optional<int64_t>(s->max_bitrate_bps()) : std::nullopt,
              s->has_max_fps() ? std::optional<int>(s->max_fps()) : std::nullopt,
              s->has_foveation() ? std::optional<bool>(s->foveation()) : std::nullopt);
        }
      }
      if (!running && !waiting(id)) {
        ++sessions_started;
        start_session(*s);
      }
    }
  }

  void reap_finished() {
    std::vector<std::pair<std::string, std::unique_ptr<SessionPipeline>>> done;
    {
      std::lock_guard lock(sessions_mutex);
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (it->second->finished()) {
          done.emplace_back(it->first, std::move(it->second));
          it = sessions.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& [id, pipeline] : done) {
      const bool failed = pipeline->failed();
      const std::string reason = pipeline->reason();
      pipeline.reset();  // frees the session's renderer, encoder and transport before telling anyone
      report(id, failed ? "failed" : "ended", reason);
    }
  }

  // The control plane decides how often nodes heartbeat (it marks them down after three missed): the node
  // follows what it is told, within sane bounds; an older control plane that says nothing leaves the default.
  void follow_heartbeat_interval(int interval_ms) {
    if (interval_ms <= 0) return;
    const double seconds = std::clamp(double(interval_ms) / 1000.0, 0.05, 60.0);
    if (seconds != options.heartbeat_interval_s)
      spdlog::info("heartbeat every {:.2f} s, as the control plane says", seconds);
    options.heartbeat_interval_s = seconds;
  }
};

NodeAgent::NodeAgent(const NodeOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.options = options;
  d.url = control::parse_control_url(options.control_url);
  if (options.node_token.empty()) throw_invalid_input("a node token is required (--node-token)");
  if (options.max_sessions < 1 || options.max_sessions > 1000)
    throw_invalid_input("--max-sessions must be 1 to 1000");
  const std::filesystem::path dir = options.scenes_dir;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file() || !is_scene_file(entry.path())) continue;
    d.scene_files[entry.path().filename().string()] = entry.path();
    d.scene_files.emplace(entry.path().stem().string(), entry.path());
  }
  if (ec) throw_invalid_input("cannot read the scenes directory " + dir.string() + ": " + ec.message());
  if (d.scene_files.empty())
    spdlog::warn("no scene files in {}: this node renders catalogue scenes only",
                 escape_for_log(dir.string()));
  d.mux = std::make_unique<UdpMux>(options.listen_udp);
  if (d.options.name.empty()) d.options.name = "node-" + std::to_string(d.mux->port());
  d.admin = std::make_unique<AdminSocket>(
      options.admin_socket.empty() ? default_admin_socket(d.mux->port()) : options.admin_socket,
      [&d] { d.drain_requested = true; }, [&d] { return d.local_status(); });
  if (options.listen_signalling != "none") {
    for (const std::string& server : options.ice_servers)
      d.webrtc_settings.ice_servers.push_back(parse_ice_server(server));
    d.signalling =
        std::make_unique<SignallingServer>(SignallingOptions{.listen = options.listen_signalling,
                                                             .tls_cert_file = options.signalling_tls_cert,
                                                             .tls_key_file = options.signalling_tls_key});
    d.signalling_url = options.advertise_signalling;
    if (d.signalling_url.empty()) {
      const std::string& l = options.listen_signalling;
      d.signalling_url = std::string(d.signalling->tls() ? "wss://" : "ws://") + l.substr(0, l.rfind(':')) +
                         ":" + std::to_string(d.signalling->port()) + "/signal";
    }
  }
  d.vulkan = VulkanContext::create(VulkanOptions{.gpu = {}, .validation = false});
  d.residency = std::make_unique<SceneResidency>(uint64_t(options.scene_memory_mb) << 20, d.vulkan);
  d.scene_cache =
      std::make_unique<SceneCache>(options.scene_cache_dir, uint64_t(options.scene_cache_mb) << 20);
  for (const BackendStatus& b : probe_encoders(Codec::kH264))
    if (b.available) d.encoders.push_back(b.backend + ":" + codec_name(b.codec));
  for (const BackendStatus& b : probe_encoders(Codec::kHevc))
    if (b.available) d.encoders.push_back(b.backend + ":" + codec_name(b.codec));
  if (d.encoders.empty()) throw_runtime("no working video encoder on this node");
  if (!options.metrics_listen.empty())
    d.metrics_server = std::make_unique<control::HttpServer>(
        control::HttpServerOptions{.listen = options.metrics_listen,
                                   .threads = 1,
                                   .body_limit = 1024,
                                   .tls_cert_file = {},
                                   .tls_key_file = {}},
        [&d](const control::HttpRequest& r) {
          if (r.method == "GET" && r.path == "/metrics") {
            const UdpMuxStats mux = d.mux->stats();
            d.metrics.set_mux_rejected(mux.unknown_session, mux.malformed);
            return control::HttpResponse{200, d.metrics.render(), "text/plain; version=0.0.4"};
          }
          if (r.method == "GET" && r.path == "/healthz")
            return control::HttpResponse{200, d.local_status(), "application/json"};
          // Nothing here changes the node: this port is reachable by Prometheus, and so by the network.
          // Draining is the admin socket's (node/admin_socket.hpp).
          return control::HttpResponse{404, R"({"error":{"code":"not_found","message":"no such route"}})",
                                       "application/json"};
        });
}

NodeAgent::~NodeAgent() {
  std::lock_guard lock(impl_->sessions_mutex);
  impl_->sessions.clear();
}

uint16_t NodeAgent::udp_port() const {
  return impl_->mux->port();
}
std::string default_admin_socket(uint16_t udp_port) {
  const char* dir = std::getenv("KAIRO_RUN_DIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/kairo-node-" + std::to_string(udp_port) + ".sock";
}

const std::string& NodeAgent::admin_socket() const {
  return impl_->admin->path();
}
std::string NodeAgent::signalling_url() const {
  return impl_->signalling_url;
}

uint16_t NodeAgent::metrics_port() const {
  return impl_->metrics_server ? impl_->metrics_server->port() : 0;
}
void NodeAgent::drain() {
  impl_->drain_requested = true;
}
bool NodeAgent::draining() const {
  return impl_->drain_requested;
}

uint64_t NodeAgent::scene_fetches() const {
  return impl_->metrics.scene_fetches_ok();
}
std::vector<std::string> NodeAgent::cached_scenes() const {
  return impl_->scene_cache->held();
}

int NodeAgent::active_sessions() const {
  std::lock_guard lock(impl_->sessions_mutex);
  return int(impl_->sessions.size());
}

void NodeAgent::run(const std::atomic<bool>& stop) {
  Impl& d = *impl_;
  // The control plane may still be starting: retry registration for a while before giving up.
  for (int attempt = 0;; ++attempt) {
    try {
      d.register_node();
      break;
    } catch (const kairo::Error& e) {
      if (e.exit_code() == 2 || attempt >= 60 || stop) throw;
      spdlog::warn("registration failed ({}); retrying", escape_for_log(e.what()));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  // The feed on a thread of its own (its request is held up to a second); this thread reaps sessions that
  // finished and reports a drain.
  std::thread feed([&d, &stop] {
    ScopedLogContext scope({.node_id = d.node_id});
    while (!stop) {
      try {
        d.follow_feed();
      } catch (const std::exception& e) {
        spdlog::warn("control plane: {}", escape_for_log(e.what()));  // sessions carry on; try again
        std::this_thread::sleep_for(std::chrono::duration<double>(d.options.poll_interval_s));
      }
    }
  });
  std::thread fetcher([&d, &stop] { d.fetch_scenes(stop); });
  ScopedLogContext scope({.node_id = d.node_id});
  while (!stop) {
    const int64_t now = steady_now_ns();
    try {
      d.reap_finished();
      d.rooms.forget_idle(now);
      d.report_drain();
    } catch (const std::exception& e) {
      spdlog::warn("control plane: {}", escape_for_log(e.what()));  // sessions carry on; try again next round
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(d.options.poll_interval_s));
  }
  feed.join();
  fetcher.join();
  {
    std::lock_guard lock(d.fetch_mutex);  // sessions still waiting for their scene end too
    for (const auto& [hash, queued] : d.waiting_for_scene)
      for (const v1::NodeSession& s : queued) d.report(s.session_id(), "ended", "the node shut down");
    d.waiting_for_scene.clear();
  }
  std::lock_guard lock(d.sessions_mutex);
  for (auto& [id, pipeline] : d.sessions) {
    pipeline.reset();
    d.report(id, "ended", "the node shut down");
  }
  d.sessions.clear();
}

}  // namespace kairo

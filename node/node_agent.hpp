#pragma once
// The node's life with the control plane: registers (node token) with its device, encoders, scenes and
// capacity; heartbeats its load every 2 s; polls for the sessions placed on it (every 250 ms, so a new
// session starts within a frame interval or so of its creation); starts a SessionPipeline for each, reports
// it running, and reports it ended or failed (with the reason) when it finishes; tears down sessions the
// control plane ended. Scenes are loaded on first use and shared by all sessions. If the control plane is
// briefly unreachable, running sessions carry on and the agent retries.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "node/quality_controller.hpp"

namespace kairo {

struct NodeOptions {
  std::string control_url;
  std::string node_token;
  std::string listen_udp = "127.0.0.1:7000";
  std::string advertise_address{};  // what clients are told; empty: listen_udp (with the bound port)
  std::string scenes_dir{};         // empty: the project's own scenes
  int max_sessions = 4;
  // Device memory the scenes loaded on this node may take (node/scene_residency.hpp): scenes no session uses
  // are evicted to make room; a scene that does not fit beside those in use fails its session.
  int scene_memory_mb = 4096;
  // Catalogue scenes fetched from the control plane (node/scene_cache.hpp): kept here, verified, within
  // scene_cache_mb, least recently used first out. Empty: a private temporary directory (no reuse across
  // restarts).
  std::string scene_cache_dir{};
  int scene_cache_mb = 10240;
  std::string metrics_listen{};  // HOST:PORT for /metrics; empty: none
  std::string name{};            // empty: node-<udp port>
  std::string encoder_backend = "auto";
  std::string ca_file{};
  double heartbeat_interval_s = 2.0;
  double poll_interval_s = 0.25;
  bool foveation = true;
  float fixed_foveation = 0;  // > 0: always foveate this strongly (tests, benchmarks)
  // Bits per coded pixel per frame a session spends at most (node/quality_controller.hpp); <= 0: no ceiling.
  double picture_ceiling_bpp = kDefaultPictureCeilingBpp;
  int encoder_threads = 0;  // 0: the encoder's choice; 1: bit-exact frames, as `kairo replay` (tests)
  // A client's loss repaired by a P-frame from before it where the encoder can (x264); false: keyframes only.
  bool repair_frames = true;
  bool intra_refresh = false;  // continuous intra refresh instead (waves of a sixth of a second)
  std::string record_dir{};    // non-empty: record every session there for `kairo replay`
  // How long a placed session waits for its client's first datagram before its slot is freed: short, so
  // sessions created and never connected cannot hold a node's slots.
  double connect_timeout_s = 5.0;
  std::string admin_socket{};  // the drain socket (node/admin_socket.hpp); empty: default_admin_socket(port)
  // Browser sessions (WebRTC): the signalling WebSocket (loopback; node/signalling_server.hpp), the URL
  // browsers are told (empty: ws://<listen_signalling with the bound port>/signal; "none": no browser
  // sessions on this node) and the STUN/TURN servers handed to webrtcbin and to the browser.
  std::string listen_signalling = "127.0.0.1:0";
  std::string advertise_signalling{};
  std::string signalling_tls_cert{}, signalling_tls_key{};  // both: WSS, on any address
  std::vector<std::string> ice_servers{};
};

// $KAIRO_RUN_DIR (or /tmp) /kairo-node-<udp port>.sock: where `kairo node-drain` looks by default.
std::string default_admin_socket(uint16_t udp_port);

class NodeAgent {
 public:
  explicit NodeAgent(const NodeOptions& options);  // binds sockets, probes the device; throws kairo::Error
  ~NodeAgent();
  uint16_t udp_port() const;
  uint16_t metrics_port() const;       // 0 without metrics
  std::string signalling_url() const;  // empty without browser sessions
  const std::string& admin_socket() const;
  // Registers and serves until `stop` becomes true; throws kairo::Error when registration is refused.
  void run(const std::atomic<bool>& stop);
  int active_sessions() const;
  uint64_t scene_fetches() const;                  // catalogue scenes fetched (cache misses)
  std::vector<std::string> cached_scenes() const;  // their SHA-256s, most recently used first
  // No new sessions: the control plane is told to drain this node (running sessions continue). Also "drain"
  // on the admin socket (the pod's preStop hook: kairo node-drain).
  void drain();
  bool draining() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo

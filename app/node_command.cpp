#include <cstdio>

#include "app/cli_parsing.hpp"
#include "app/commands.hpp"
#include "app/scene_paths.hpp"
#include "app/signal_stop.hpp"
#include "core/error.hpp"
#include "core/log_format.hpp"
#include "node/node_agent.hpp"

namespace kairo::app {

Runner add_node_command(CLI::App& app) {
  auto o = std::make_shared<NodeOptions>();
  auto token_file = std::make_shared<std::string>();
  auto loss_recovery = std::make_shared<std::string>("repair");
  app.add_option("--control", o->control_url, "control plane URL (http://HOST:PORT or https://...)")
      ->envname("KAIRO_CONTROL")
      ->required();
  app.add_option("--node-token", o->node_token, "node token (minted by an operator, or the control plane's)")
      ->envname("KAIRO_NODE_TOKEN");
  app.add_option("--node-token-file", *token_file, "a file holding the node token")
      ->envname("KAIRO_NODE_TOKEN_FILE");
  app.add_option("--listen-udp", o->listen_udp, "HOST:PORT for every session's UDP stream")
      ->envname("KAIRO_LISTEN_UDP")
      ->capture_default_str();
  app.add_option("--advertise", o->advertise_address, "HOST:PORT clients are told (default: --listen-udp)")
      ->envname("KAIRO_ADVERTISE");
  app.add_option("--scenes", o->scenes_dir, "directory of scene files (default: the project's scenes)")
      ->envname("KAIRO_SCENES");
  app.add_option("--scene-cache", o->scene_cache_dir,
                 "directory for catalogue scenes fetched from the control plane (default: a temporary one)")
      ->envname("KAIRO_SCENE_CACHE");
  app.add_option("--scene-cache-mb", o->scene_cache_mb,
                 "disk the scene cache may take; least recently used scenes go first")
      ->envname("KAIRO_SCENE_CACHE_MB")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--scene-memory-mb", o->scene_memory_mb,
                 "device memory the loaded scenes may take; scenes no session uses are evicted to make room")
      ->envname("KAIRO_SCENE_MEMORY_MB")
      ->capture_default_str()
      ->check(CLI::Range(16, 1 << 20));
  app.add_option("--max-sessions", o->max_sessions, "sessions this node takes at once")
      ->envname("KAIRO_MAX_SESSIONS")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--metrics", o->metrics_listen, "HOST:PORT for Prometheus /metrics")
      ->envname("KAIRO_METRICS");
  app.add_option("--name", o->name, "node name in the fleet (default: node-<udp port>)")
      ->envname("KAIRO_NODE_NAME");
  app.add_option("--encoder", o->encoder_backend, "auto, nvenc, vaapi, x264, x265")
      ->envname("KAIRO_ENCODER")
      ->capture_default_str();
  app.add_option(
         "--loss-recovery", *loss_recovery,
         "repair: a client's loss repaired by a P-frame predicted from before it where the encoder can "
         "(x264), else a keyframe; keyframe: always a keyframe; intra-refresh: continuous intra refresh "
         "(x264; waves of a sixth of a second), which repairs a loss within two waves without a request")
      ->check(CLI::IsMember({"repair", "keyframe", "intra-refresh"}))
      ->capture_default_str();
  app.add_option("--ca-file", o->ca_file, "CA bundle for an https control plane")->envname("KAIRO_CA_FILE");
  app.add_option("--record", o->record_dir, "record every session (poses, settings, events) for kairo replay")
      ->envname("KAIRO_RECORD");
  app.add_option("--connect-timeout", o->connect_timeout_s,
                 "seconds a placed session waits for its client before its slot is freed")
      ->envname("KAIRO_CONNECT_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 600.0));
  app.add_option(
         "--admin-socket", o->admin_socket,
         "unix socket for kairo node-drain (default: $KAIRO_RUN_DIR or /tmp, /kairo-node-<udp port>.sock)")
      ->envname("KAIRO_ADMIN_SOCKET");
  app.add_option(
         "--max-bits-per-pixel", o->picture_ceiling_bpp,
         "a session's bitrate ceiling in bits per coded pixel per frame, where more bits buy no visible "
         "quality (0: none, the link estimate and caps only)")
      ->envname("KAIRO_MAX_BITS_PER_PIXEL")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 24.0));
  app.add_option(
         "--listen-signalling", o->listen_signalling,
         "HOST:PORT of the WebSocket browsers signal WebRTC sessions on (loopback unless WSS); none: no "
         "browser sessions")
      ->envname("KAIRO_LISTEN_SIGNALLING")
      ->capture_default_str();
  app.add_option("--signalling-tls-cert", o->signalling_tls_cert,
                 "PEM certificate chain: the signalling socket is WSS (and may listen beyond loopback)")
      ->envname("KAIRO_SIGNALLING_TLS_CERT");
  app.add_option("--signalling-tls-key", o->signalling_tls_key, "PEM private key for --signalling-tls-cert")
      ->envname("KAIRO_SIGNALLING_TLS_KEY");
  app.add_option(
         "--advertise-signalling", o->advertise_signalling,
         "the signalling URL browsers are told, e.g. wss://node.example:443/signal behind a TLS proxy")
      ->envname("KAIRO_ADVERTISE_SIGNALLING");
  app.add_option("--ice-server", o->ice_servers,
                 "STUN or TURN server for browser sessions (stun:HOST:PORT, turn:USER:PASSWORD@HOST:PORT); "
                 "repeatable")
      ->envname("KAIRO_ICE_SERVERS")
      ->delimiter(',');
  app.add_flag("!--no-foveation", o->foveation,
               "never foveate (the quality controller uses resolution instead)");
  return [o, token_file, loss_recovery] {
    o->repair_frames = *loss_recovery == "repair";
    o->intra_refresh = *loss_recovery == "intra-refresh";
    o->node_token = read_secret(o->node_token, *token_file, "--node-token", "KAIRO_NODE_TOKEN");
    if (o->node_token.empty())
      throw_invalid_input("a node token is required: KAIRO_NODE_TOKEN or --node-token-file");
    if (o->scenes_dir.empty()) o->scenes_dir = default_scene_dir().string();
    SignalStop signals;
    NodeAgent agent(*o);
    announce("UDP port " + std::to_string(agent.udp_port()) +
             (agent.metrics_port() ? ", metrics port " + std::to_string(agent.metrics_port()) : "") +
             ", admin socket " + agent.admin_socket() +
             (agent.signalling_url().empty() ? "" : ", browser signalling " + agent.signalling_url()));
    agent.run(signals.stop);
    return 0;
  };
}

}  // namespace kairo::app

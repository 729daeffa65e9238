#pragma once
// One session on a node: poses from the client -> prediction to the client's display time -> stereo render
// -> NV12 (foveated or scaled by the quality controller) on the device -> encode -> packetize, pace, send.
// In a room, each frame also draws the room as it is at render start (the others' avatars, shared objects),
// and the room's state goes to the client whenever it changes.
// Two threads overlap the stages across frame slots: the render thread renders frame N while the encode
// thread encodes N-1 and the transport's thread paces N-2 out, so throughput is bounded by the slowest stage.
// Between render and encode the queue holds one frame and applies back-pressure (a rendered frame is never
// thrown away); the transport keeps only the newest unsent frame. Sessions share nothing but the scene and
// the node's socket: a slow or lossy client stalls only its own threads. The pipeline knows its transport
// only through streaming/session_transport.hpp, and its client's messages through its mailbox (SessionInbox).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "encoder/video_encoder.hpp"
#include "node/quality_controller.hpp"
#include "streaming/datagram_crypto.hpp"
#include "streaming/session_transport.hpp"

namespace kairo {

class GpuScene;
class NodeMetrics;
class Room;

struct SessionSpec {
  std::string id;            // the control plane's session id (32 hex digits)
  std::string request_id{};  // the request that created it (log lines carry it)
  std::string scene;
  int eye_width = 0, eye_height = 0, fps = 0;
  Codec codec = Codec::kH264;
  SessionKey key;
  std::optional<int64_t> max_bitrate_bps;
  std::optional<int> max_fps;     // a cap below the session's frame rate
  std::optional<bool> foveation;  // false: never foveate
  std::string room{};             // non-empty: the session joins this room (docs/rooms.md)
  std::string user{};             // who the session is for (the name others see on the avatar)
  std::string transport = "udp";  // udp, or webrtc (a browser)
  std::string h264_profile{};     // EncoderConfig::h264_profile ("main" for browsers); empty: the encoder's
};

struct PipelineOptions {
  std::string encoder_backend = "auto";
  int encoder_threads = 0;  // 0: the encoder's choice; 1: bit-exact frames (replay's setting, for tests)
  // How a client's loss is repaired (UDP clients; browsers always take keyframes): with a repair frame
  // (EncoderConfig::reference_invalidation) or with continuous intra refresh, waves of that many frames.
  bool repair_frames = true;
  int intra_refresh_frames = 0;
  int64_t initial_bitrate_bps = 8'000'000;
  double client_timeout_s = 3.0;   // an authenticated datagram at least this often, or the session ends
  double connect_timeout_s = 5.0;  // the client's first datagram within this, or the session fails
  bool foveation = true;           // the quality controller may squeeze the periphery
  float fixed_foveation = 0;       // > 0: always foveate this strongly (benchmarks, tests)
  double picture_ceiling_bpp = kDefaultPictureCeilingBpp;  // bitrate ceiling per coded pixel; <= 0: none
  std::string record_dir{};  // non-empty: record poses, settings and events there (SessionRecorder)
};

struct SessionPipelineStats {
  uint64_t frames_rendered = 0, frames_sent = 0;
  int64_t bitrate_bps = 0;
  int fps = 0;
  double resolution_scale = 1;
  float foveation = 0;
  double render_ms = 0, encode_ms = 0;  // recent averages
  std::string encoder_backend;
};

class SessionPipeline {
 public:
  // Throws kairo::Error when the session cannot start (bad size, no encoder, session id already in use, the
  // room full). `room` is the room named by spec.room (the node's RoomRegistry), null without one.
  // `make_transport` makes the session's transport (streaming/session_transport.hpp): the UDP stream on the
  // node's shared socket, or any other that implements the interface.
  SessionPipeline(const SessionSpec& spec, std::shared_ptr<GpuScene> scene,
                  const TransportFactory& make_transport, NodeMetrics& metrics,
                  const PipelineOptions& options, std::shared_ptr<Room> room = nullptr);
  ~SessionPipeline();
  SessionPipeline(const SessionPipeline&) = delete;
  SessionPipeline& operator=(const SessionPipeline&) = delete;

  const SessionSpec& spec() const;
  // The control plane's quality caps (PATCH /v1/sessions/{id}/quality), applied within 100 ms.
  void set_caps(std::optional<int64_t> max_bitrate_bps, std::optional<int> max_fps,
                std::optional<bool> foveation);
  // Finished: the client went silent or never came (ended), or the pipeline hit an error (failed).
  bool finished() const;
  bool failed() const;
  std::string reason() const;
  SessionPipelineStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo

#pragma once
// The node's Prometheus metrics, aggregated over its sessions: per-stage latency histograms, frames by
// outcome, video bytes, datagrams by kind, RTT, active sessions, encoder backend, quality decisions,
// keyframes by cause. One exception labels by session (a short id prefix): the bitrate target and its limit.
// Lock-free counters on the frame path; render() writes the text format.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace kairo {

enum class Stage { kPoseWait, kRender, kEncode, kNodeTotal, kCount };
// Frames by outcome: rendered; sent (handed to the transport); dropped (handed over but not put on the wire:
// a browser transport before its connection or its first keyframe); failed.
enum class FrameOutcome { kRendered, kSent, kDropped, kFailed, kCount };
// Which transport a session streams over (the `transport` label of the frame counts).
enum class TransportKind { kUdp, kWebRtc, kCount };
enum class DatagramKind { kSent, kRetransmitted, kFec, kLost, kCount };
// Datagrams the node refused, by why: so that a flood of forged or replayed datagrams, or a session falling
// behind, shows on a dashboard (per node: no session label).
enum class Rejection {
  kMalformed,       // not a Kairo datagram (bad header) for a known session
  kWrongSession,    // authenticated against another session's id
  kForged,          // failed authentication
  kReplayed,        // a sequence number already seen
  kStale,           // older than the replay window
  kInboxFull,       // the session's inbox was full (it fell behind)
  kUnknownSession,  // the UDP mux had no such session
  kMuxMalformed,    // the UDP mux could not read a header
  kCount
};
// Why a frame was coded as a keyframe: the session's first, a client's loss (a request not already answered
// by a later keyframe), a change of coded size (the encoder restarts), or the encoder's own choice.
enum class KeyframeCause { kStart, kLoss, kResize, kEncoder, kCount };
// Path validation and retransmission control (streaming/stream_server.hpp).
enum class PathEvent { kChallengeSent, kValidated, kAmplificationLimited, kRetransmissionSuppressed, kCount };

class NodeMetrics {
 public:
  void observe_stage(Stage stage, double seconds);
  void count_frame(FrameOutcome outcome, TransportKind transport = TransportKind::kUdp, uint64_t n = 1) {
    frames_[size_t(transport)][size_t(outcome)] += n;
  }
  void add_video_bytes(uint64_t n) { video_bytes_ += n; }
  void add_datagrams(DatagramKind kind, uint64_t n) { datagrams_[size_t(kind)] += n; }
  void add_rejected(Rejection why, uint64_t n) { rejected_[size_t(why)] += n; }
  // The mux's totals (it counts on its own thread): set, not added.
  void set_mux_rejected(uint64_t unknown_session, uint64_t malformed) {
    mux_unknown_ = unknown_session;
    mux_malformed_ = malformed;
  }
  void add_path_events(PathEvent what, uint64_t n) { path_events_[size_t(what)] += n; }
  void set_rtt_seconds(double rtt) { rtt_us_ = int64_t(rtt * 1e6); }
  void count_keyframe(KeyframeCause cause) { ++keyframes_[size_t(cause)]; }
  void count_loss_repair() { ++loss_repairs_; }
  void add_keyframe_requests(uint64_t honoured, uint64_t answered_already) {
    keyframe_requests_[0] += honoured;
    keyframe_requests_[1] += answered_already;
  }
  // Per session (labelled by the first 8 hex digits of its id: a node runs a handful, and a session's series
  // go when it ends): the encoder's target and what holds it there (link, picture, cap), so that a session
  // spiralling down shows on a dashboard before its user complains.
  void set_session_target(const std::string& session, int64_t bitrate_bps, const char* limited_by);
  void forget_session(const std::string& session);
  void session_started(const std::string& encoder_backend);
  void session_ended(const std::string& encoder_backend, bool failed);
  void quality_decision(const std::string& knob, const std::string& reason);
  // Rooms: joins, leaves, grabs and releases (wire::RoomEventKind 1..4); members = joins - leaves.
  void room_event(uint8_t kind) {
    if (kind >= 1 && kind <= room_events_.size()) ++room_events_[kind - 1];
  }
  // Catalogue scenes fetched from the control plane (a cache miss each), by result.
  void scene_fetched(bool ok) { ++scene_fetches_[ok ? 0 : 1]; }
  uint64_t scene_fetches_ok() const { return scene_fetches_[0].load(); }
  int active_sessions() const { return active_.load(); }
  std::string render() const;

 private:
  static constexpr std::array<double, 12> kBounds{0.001, 0.002, 0.005, 0.01, 0.02, 0.035,
                                                  0.05,  0.075, 0.1,   0.2,  0.5,  1.0};
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};  // last: +Inf
    std::atomic<uint64_t> count{0};
    std::atomic<int64_t> sum_us{0};
  };
  std::array<Histogram, size_t(Stage::kCount)> stages_;
  std::array<std::array<std::atomic<uint64_t>, size_t(FrameOutcome::kCount)>, size_t(TransportKind::kCount)>
      frames_{};
  std::array<std::atomic<uint64_t>, size_t(DatagramKind::kCount)> datagrams_{};
  std::array<std::atomic<uint64_t>, size_t(Rejection::kCount)> rejected_{};
  std::atomic<uint64_t> mux_unknown_{0}, mux_malformed_{0};
  std::array<std::atomic<uint64_t>, size_t(PathEvent::kCount)> path_events_{};
  std::array<std::atomic<uint64_t>, 4> room_events_{};
  std::array<std::atomic<uint64_t>, 2> scene_fetches_{};  // ok, failed
  std::array<std::atomic<uint64_t>, size_t(KeyframeCause::kCount)> keyframes_{};
  std::atomic<uint64_t> loss_repairs_{0};
  std::array<std::atomic<uint64_t>, 2> keyframe_requests_{};  // honoured, answered already
  std::atomic<uint64_t> video_bytes_{0};
  std::atomic<int64_t> rtt_us_{0};
  std::atomic<int> active_{0};
  // Session start/end and quality decisions are rare: a mutex is fine there.
  mutable std::mutex mutex_;
  std::map<std::string, int> backends_;
  std::map<std::string, uint64_t> sessions_ended_;
  std::map<std::pair<std::string, std::string>, uint64_t> decisions_;
  struct SessionTarget {
    int64_t bitrate_bps = 0;
    const char* limited_by = "initial";
  };
  std::map<std::string, SessionTarget> session_targets_;
};

}  // namespace kairo

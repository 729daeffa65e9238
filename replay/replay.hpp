#pragma once
// QA's headless replay: the real pipeline (render -> NV12 -> encode [-> transport through netsim] -> decode)
// for every pose of a trace,
// deterministic for the same inputs and build. Per frame: a hash of the rendered image, PSNR and SSIM of the
// decoded picture against the rendered one, encoded size, stage latencies. Writes frames.jsonl,
// summary.json, fingerprints (small PNGs of every rendered frame, for tolerant comparison), thumbnails and
// report.html; compares with a baseline run and names the frames that regressed.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "node/frame_stage.hpp"
#include "replay/regression_ranges.hpp"
#include "streaming/netsim.hpp"

namespace kairo {

class Progress;

// A frame a node encoded for its client's loss (a recording's encodes.jsonl, node/session_recorder.hpp).
struct RecordedEncode {
  bool keyframe = false;
  std::optional<uint64_t> recover_from{};
  bool speculative = false;
};

struct ReplayOptions {
  std::filesystem::path scene;
  std::filesystem::path trace;
  int eye_width = 512, eye_height = 512, fps = 30;
  std::string encoder = "auto";
  std::string codec = "h264";
  int64_t bitrate_bps = 8'000'000;
  std::filesystem::path out;
  std::filesystem::path baseline{};  // empty: no comparison
  // Regression thresholds against the baseline.
  double image_tolerance_db = 40.0;  // rendered fingerprints must stay above this PSNR
  double quality_drop_db = 1.0;      // decoded PSNR may fall at most this much, per frame
  double latency_rise = 0.5;         // median render+encode+decode may rise at most this share
  double latency_floor_ms = 2.0;     // ... or at most this many milliseconds (timer noise at small sizes)
  int max_frames = 100'000;
  // The frame stage's settings (node/frame_stage.hpp), for every frame: foveation strength and centre,
  // resolution scale. A node recording (frames.jsonl) gives them per frame instead, with each frame's
  // bitrate: the session's own frames are reproduced.
  FrameSettings settings{};
  std::vector<FrameSettings> recorded_settings{};  // by frame; empty: `settings` (and bitrate_bps) for all
  std::map<uint64_t, RecordedEncode> recorded_encodes{};  // by frame: the node's loss-recovery encodes
  // Through Kairo's transport and a netsim relay on loopback (replay/replay_transport.hpp); none: encoder
  // output straight to the decoder.
  std::optional<ImpairmentConfig> netsim{};
  uint64_t netsim_seed = 1;
  std::string netsim_args{};  // as given, for the summary
  // Keep every rendered frame full size (replay/frame_archive.hpp: about 0.35 MB a frame at 2x512^2), so
  // that a later run against this one draws full-size pictures of what changed.
  bool keep_frames = true;
  // Where progress goes (core/progress.hpp), or nowhere; a suite's cases share one.
  Progress* progress = nullptr;
};

struct ReplayFrame {
  uint64_t index = 0;
  int64_t t_ns = 0;
  std::string render_hash;       // BLAKE2b-128 of the rendered RGBA
  double psnr_db = 0, ssim = 0;  // decoded vs rendered luma
  uint64_t encoded_bytes = 0;
  bool keyframe = false;
  double render_ms = 0, encode_ms = 0, decode_ms = 0;
  std::string decoded_hash;  // BLAKE2b-128 of the decoded luma: equal for equal encoded frames
  float foveation = 0;       // the settings it was made with
  int coded_width = 0, coded_height = 0;
  // With --netsim: whether the frame made it, and what it took.
  bool lost = false;
  double transport_ms = 0;
  int fec_recovered = 0, retransmitted = 0;
};

struct Regression {
  uint64_t frame = 0;
  std::string what;     // "rendered image changed (PSNR 31.2 dB against the baseline)", ...
  std::string kind;     // "image", "quality", "lost", "run" (RegressionRange)
  double severity = 0;  // the larger, the worse, within a kind (the worst frame of a range)
};

struct ReplayResult {
  std::vector<ReplayFrame> frames;
  std::vector<Regression> regressions;  // empty without a baseline or when none
  std::vector<RegressionRange> ranges;  // the regressions grouped, with pictures of changed images
  double frames_per_second = 0;         // the whole replay's throughput
  std::string encoder_backend;
  uint64_t frames_lost = 0, fec_recovered_fragments = 0, retransmitted_fragments = 0;
  uint64_t datagrams_lost_by_netsim = 0, keyframe_requests = 0;
};

// fingerprints/NNNNNN.png: the small image of every rendered frame compared within tolerance.
std::string replay_fingerprint_name(uint64_t frame);

// Throws kairo::Error on bad input (scene, trace, sizes) or a missing baseline.
ReplayResult run_replay(const ReplayOptions& options);

// SSIM of two 8-bit planes (Wang et al. 2004 as x264 and FFmpeg's `ssim` filter compute it: 8x8 windows,
// stride 4). Hand-written: the filter needs a libavfilter graph per frame size, far heavier than these few
// lines for one plane; a test holds it equal to the filter within 0.0005.
double plane_ssim(const uint8_t* a, const uint8_t* b, int width, int height);

}  // namespace kairo

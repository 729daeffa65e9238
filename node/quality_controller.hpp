#pragma once
// Per-session quality control: turns the transport's bandwidth estimate, the measured loss, the client's
// decode time and the node's own stage times into the encoder bitrate, and, when bitrate alone cannot hold
// the frame rate and a watchable picture, into foveation strength, resolution scale and frame rate. Caps
// from the control plane's quality adjust always win. Every change is a Decision with its reason (logged
// and counted by the caller). Pure logic, no clock of its own: tests drive it with synthetic inputs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kairo {

struct QualityInputs {
  int64_t now_ns = 0;
  int64_t transport_target_bps = 0;  // video rate the transport can carry (0: no estimate yet)
  double loss = 0;                   // 0..1 as reported by the client
  double client_decode_ms = 0;
  double slowest_stage_ms = 0;  // the node's slowest pipeline stage (render or encode), recent median
};

// Bits per coded pixel per frame above which the picture gains nothing worth the bits: on the project's
// scenes (x264, VBV, no filler; bench/RESULTS.md "PSNR against bitrate"), 0.5 bpp decodes at 45 dB mean
// PSNR, past visible loss. Without a ceiling the encoder spends whatever the link estimate allows.
constexpr double kDefaultPictureCeilingBpp = 0.5;

struct QualityCaps {
  std::optional<int64_t> max_bitrate_bps;  // from the control plane
  int max_fps = 90;                        // the session's requested frame rate
  int min_fps = 30;
  bool foveation_available = true;
  double picture_ceiling_bpp = kDefaultPictureCeilingBpp;  // <= 0: none (the link and the cap only)
};

// What holds the bitrate where it is: the transport's estimate of the link, the picture's ceiling, or the
// control plane's cap (or nothing yet).
enum class BitrateLimit { kInitial, kLink, kPicture, kCap };
const char* bitrate_limit_name(BitrateLimit limit);  // "initial", "link", "picture", "cap"

struct QualitySettings {
  int64_t bitrate_bps = 10'000'000;
  BitrateLimit limited_by = BitrateLimit::kInitial;
  int fps = 90;
  double resolution_scale = 1.0;  // 1, 0.75, 0.5 of the requested eye size
  float foveation = 0;            // 0 (off) .. 0.6
  bool operator==(const QualitySettings&) const = default;
};

struct QualityDecision {
  std::string knob;  // bitrate, fps, resolution_scale, foveation
  double from = 0, to = 0;
  std::string reason;  // bandwidth_estimate, picture_ceiling, control_plane_cap, loss, node_load,
                       // client_decode, starved, headroom
};

class QualityController {
 public:
  QualityController(const QualityCaps& caps, int eye_width, int eye_height, int64_t initial_bitrate_bps);
  // Call at least a few times per second. Returns the decisions taken (usually none); settings() holds the
  // result.
  const std::vector<QualityDecision>& update(const QualityInputs& in);
  const QualitySettings& settings() const { return settings_; }
  void set_caps(const QualityCaps& caps) { caps_ = caps; }
  const QualityCaps& caps() const { return caps_; }

  // Bits per pixel per frame under which the picture is starved (blocky): foveation, then resolution, then
  // frame rate give way. Over kHeadroomBpp for a while they come back in reverse order.
  static constexpr double kStarvedBpp = 0.04;
  static constexpr double kHeadroomBpp = 0.12;

 private:
  void change(const char* knob, double from, double to, const char* reason);
  double bits_per_pixel(int64_t bitrate, int fps, double scale) const;
  int64_t picture_ceiling_bps() const;  // 0: none

  QualityCaps caps_;
  int eye_width_, eye_height_;
  QualitySettings settings_;
  std::vector<QualityDecision> decisions_;
  int64_t starved_since_ = -1, headroom_since_ = -1, overloaded_since_ = -1, relaxed_since_ = -1,
          last_structural_change_ = -1;
  int64_t first_update_ns_ = -1;
};

}  // namespace kairo
